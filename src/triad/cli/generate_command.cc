#include <fmt/format.h>

#include <filesystem>
#include <memory>

#include "triad/cli/cli.h"
#include "triad/core/error.h"
#include "triad/core/parallel.h"
#include "triad/data/tokenizer.h"
#include "triad/model/generate.h"
#include "triad/train/checkpoint.h"

namespace triad::cli {

Runner add_generate_command(CLI::App& root) {
  struct Flags {
    std::string checkpoint, prompt;
    SampleOptions sample;
    int threads = 1;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd =
      root.add_subcommand("generate", "Continue a prompt with a trained model (KV-cache sampling).");
  add_config_option(*cmd);
  cmd->add_option("--checkpoint", f->checkpoint,
                  "A checkpoint directory, or a run directory (its newest checkpoint)")
      ->type_name("CKPT");
  cmd->add_option("--prompt", f->prompt, "Text to continue");
  cmd->add_option("--max-tokens", f->sample.max_tokens,
                  "Tokens to generate at most (stops early at end of text)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", f->sample.temperature, "Sampling temperature (0: greedy)");
  cmd->add_option("--top-k", f->sample.top_k, "Sample among the k most likely tokens (0: all)");
  cmd->add_option("--seed", f->sample.seed, "Sampling seed");
  cmd->add_option("--threads", f->threads, "Threads")->check(CLI::PositiveNumber);
  return [f]() {
    if (f->checkpoint.empty()) fail_usage("--checkpoint is required");
    if (f->prompt.empty()) fail_usage("--prompt is required");
    set_threads(f->threads);
    std::string dir = resolve_checkpoint(f->checkpoint);
    CheckpointManifest manifest = read_checkpoint_manifest(dir);
    Gpt<float> model(manifest.model);
    load_checkpoint_weights(dir, &model, nullptr);
    // The tokenizer travels with the run: RUN/tokenizer.model, two levels above step_N/.
    std::filesystem::path run = std::filesystem::path(dir).parent_path().parent_path();
    Tokenizer tokenizer = Tokenizer::load((run / "tokenizer.model").string());
    if (tokenizer.vocab_size() != manifest.model.vocab) {
      fail("{}: tokenizer has {} pieces, the model {}", (run / "tokenizer.model").string(),
           tokenizer.vocab_size(), manifest.model.vocab);
    }
    std::vector<int> ids;
    tokenizer.encode(f->prompt, &ids);
    std::vector<int32_t> prompt(ids.begin(), ids.end());
    std::vector<int32_t> out = generate(model, prompt, f->sample, tokenizer.eos_id());
    ids.insert(ids.end(), out.begin(), out.end());
    fmt::print("{}\n", tokenizer.decode(ids));
    return 0;
  };
}

}  // namespace triad::cli
