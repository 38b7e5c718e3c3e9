#include <fmt/format.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "triad/cli/cli.h"
#include "triad/compress/prune.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/memory.h"
#include "triad/core/sha256.h"
#include "triad/core/version.h"
#include "triad/train/checkpoint.h"

namespace triad::cli {

namespace fs = std::filesystem;

Runner add_prune_command(CLI::App& root) {
  struct PruneFlags {
    std::string model, out;
    double remove = 0, sparsity = 0;
    int remove_heads = 0;
    bool force = false;
  };
  auto f = std::make_shared<PruneFlags>();
  CLI::App* cmd = root.add_subcommand(
      "prune",
      "Prune a trained model into a new run: attention heads and MLP units (smaller, faster) and/or weight "
      "magnitude.");
  cmd->footer(
      "Fine-tune the result with 'triad train --resume OUT --steps N' (N: the source's step plus the "
      "fine-tuning steps). Prints a JSON summary on stdout. See docs/compress.md.");
  add_config_option(*cmd);
  cmd->add_option("--model", f->model, "A checkpoint directory, or a run directory (its newest checkpoint)")
      ->type_name("CKPT");
  cmd->add_option("--out", f->out, "The new run directory")->type_name("DIR");
  cmd->add_option("--remove", f->remove,
                  "Fraction of the parameters to remove by dropping the least important MLP units, the same "
                  "number in every layer (with --remove-heads: the heads' share included)");
  cmd->add_option("--remove-heads", f->remove_heads,
                  "Attention heads to drop in every layer, each layer its least important ones");
  cmd->add_option("--sparsity", f->sparsity,
                  "Fraction of each block linear weight's entries to zero, smallest magnitude first (same "
                  "shapes and speed)");
  cmd->add_flag("--force", f->force, "Replace --out if it is a triad run");
  return [f]() {
    if (f->model.empty() || f->out.empty()) fail_usage("--model and --out are required");
    if (f->remove == 0 && f->remove_heads == 0 && f->sparsity == 0)
      fail_usage("give --remove, --remove-heads and/or --sparsity");
    const std::string dir = resolve_checkpoint(f->model);
    CheckpointManifest manifest = read_checkpoint_manifest(dir);
    Gpt<float> model(manifest.model);
    load_checkpoint_weights(dir, &model);
    parallel::OptimizerState optimizer = load_optimizer_state(dir, manifest, model.layout(), 0);
    if (optimizer.states != StatePrecision::kFp32)
      fail_usage("{}: pruning needs fp32 optimizer states (the run used 8-bit ones)", dir);
    GptConfig config = manifest.model;
    const int heads = without_heads(config, f->remove_heads).heads;  // refuses a count out of range
    std::vector<float> params(model.params(), model.params() + model.num_params());
    if (f->remove > 0 || f->remove_heads > 0) {
      const int width = f->remove > 0 ? mlp_width_removing(config, f->remove, f->remove_heads) : config.mlp();
      const StructuredPruning p = prune_structure(config, params.data(), heads, width);
      config = p.config;
      params = gather(p.source, params.data());
      optimizer.m = gather(p.source, optimizer.m.data());
      optimizer.v = gather(p.source, optimizer.v.data());
      optimizer.residuals.clear();  // a gradient codec's per-bucket state: the buckets changed; restart at 0
    }
    size_t zeros = 0;
    if (f->sparsity > 0) zeros = prune_magnitude(config, params.data(), f->sparsity);

    create_run_dir(f->out, f->force);
    const fs::path source_run = fs::path(dir).parent_path().parent_path();
    write_file_atomic((fs::path(f->out) / "tokenizer.model").string(),
                      read_file((source_run / "tokenizer.model").string()));
    TrainOptions options = manifest.options;
    options.model = config;
    options.out_dir = f->out;
    const nlohmann::json pruned = {{"checkpoint", dir},
                                   {"remove", f->remove},
                                   {"remove_heads", f->remove_heads},
                                   {"sparsity", f->sparsity},
                                   {"heads", config.heads},
                                   {"head_size", config.head_dim()},
                                   {"mlp_width", config.mlp()},
                                   {"parameters_before", manifest.model.num_parameters()},
                                   {"parameters_after", config.num_parameters()}};
    const std::string data_sha = manifest.json.value("data_manifest_sha256", "");
    nlohmann::json run = {{"format", "triad-run"},
                          {"triad_version", kVersion},
                          {"host", host_name()},
                          {"options", options.to_json()},
                          {"model", config.describe()},
                          {"data_manifest_sha256", data_sha},
                          {"ranks", 1},
                          {"pruned_from", pruned}};
    write_file_atomic((fs::path(f->out) / "run.json").string(), run.dump(2) + "\n");
    const nlohmann::json extra = {
        {"data_manifest_sha256", data_sha},
        {"tokenizer_sha256", sha256_file_hex((fs::path(f->out) / "tokenizer.model").string())}};
    CheckpointInfo info = save_checkpoint(f->out, ParameterLayout(config), params.data(), options,
                                          manifest.state, optimizer, extra);
    nlohmann::json summary = pruned;
    summary["out"] = info.dir;
    summary["removed_fraction"] = 1.0 - static_cast<double>(config.num_parameters()) /
                                            static_cast<double>(manifest.model.num_parameters());
    if (f->sparsity > 0) summary["zero_weights"] = zeros;
    fmt::print("{}\n", summary.dump());
    return 0;
  };
}

}  // namespace triad::cli
