#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

#include "triad/cli/cli.h"
#include "triad/compress/int8_model.h"
#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/core/parallel.h"
#include "triad/data/tokenizer.h"
#include "triad/governance/audit_events.h"
#include "triad/governance/note.h"
#include "triad/model/generate.h"
#include "triad/train/checkpoint.h"
#include "triad/train/evaluate.h"
#include "triad/train/tokenizer_agreement.h"

namespace triad::cli {

Runner add_generate_command(CLI::App& root) {
  struct GenerateFlags {
    std::string checkpoint, prompt;
    SampleOptions sample;
    int threads = 1;
    bool audit = false, log_text = false;
    std::string audit_key, weights = "fp32";
  };
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd =
      root.add_subcommand("generate", "Continue a prompt with a trained model (KV-cache sampling).");
  add_config_option(*cmd);
  cmd->add_option("--checkpoint", f->checkpoint,
                  "A checkpoint directory, or a run directory (its newest checkpoint)")
      ->type_name("CKPT");
  cmd->add_option("--prompt", f->prompt, "Text to continue");
  cmd->add_option("--max-tokens", f->sample.max_tokens,
                  "Tokens to generate at most (stops early at end of text)")
      ->check(positive());
  cmd->add_option("--temperature", f->sample.temperature, "Sampling temperature (0: greedy)");
  cmd->add_option("--top-k", f->sample.top_k, "Sample among the k most likely tokens (0: all)")
      ->check(non_negative());
  cmd->add_option("--seed", f->sample.seed, "Sampling seed");
  cmd->add_option("--threads", f->threads, "Threads")->check(positive());
  cmd->add_option("--weights", f->weights,
                  "fp32, or int8: post-training quantized linear layers (docs/compress.md)")
      ->check(CLI::IsMember({"fp32", "int8"}));
  cmd->add_flag("--audit", f->audit,
                "Log this inference (SHA-256 of prompt and output, the checkpoint, the sampling settings) in "
                "the checkpoint's run audit log, RUN/audit/")
      ->group("Governance");
  cmd->add_flag("--log-text", f->log_text, "With --audit: also log the prompt and output text themselves")
      ->group("Governance");
  cmd->add_option("--audit-key", f->audit_key,
                  "With --audit: seal the log with a tree head signed by this key (NAME.key)")
      ->type_name("FILE")
      ->group("Governance");
  return [f]() {
    if (f->checkpoint.empty()) fail_usage("--checkpoint is required");
    if (f->prompt.empty()) fail_usage("--prompt is required");
    // Sampling divides the logits by it: a negative one sampled greedily as 0 does, NaN made every
    // probability NaN and infinity made them all equal.
    if (!(std::isfinite(f->sample.temperature) && f->sample.temperature >= 0))
      fail_usage("--temperature must be a non-negative number (0: greedy), got {}", f->sample.temperature);
    if ((f->log_text || !f->audit_key.empty()) && !f->audit)
      fail_usage("--log-text and --audit-key only apply with --audit");
    std::optional<NoteSigner> signer;
    if (!f->audit_key.empty()) {
      try {
        signer = load_signer(f->audit_key);
      } catch (const Error& e) {
        fail_usage("--audit-key: {}", e.what());
      }
    }
    set_threads(f->threads);
    std::string dir = resolve_checkpoint(f->checkpoint);
    CheckpointManifest manifest = read_checkpoint_manifest(dir);
    Gpt<float> model(manifest.model);
    load_checkpoint_weights(dir, &model);
    // The tokenizer travels with the run: RUN/tokenizer.model, two levels above step_N/.
    const Tokenizer tokenizer = load_checkpoint_tokenizer(dir, manifest.json, manifest.model.vocab);
    const std::filesystem::path run = std::filesystem::path(dir).parent_path().parent_path();
    // Opened before generating, so that a log another process holds fails the command before any output.
    std::optional<AuditLog> log;
    if (f->audit)
      log.emplace(AuditLog::open(run.string(), {.host = "", .rank = 0, .recover_torn_tail = true}));
    size_t generated = 0;
    std::string text;
    if (f->weights == "int8") {
      Int8Gpt int8(model);
      std::vector<int> ids;
      tokenizer.encode(f->prompt, &ids);
      std::vector<int32_t> out =
          int8_generate(int8, std::vector<int32_t>(ids.begin(), ids.end()), f->sample, tokenizer.eos_id());
      generated = out.size();
      ids.insert(ids.end(), out.begin(), out.end());
      text = tokenizer.decode(ids);
    } else {
      text = sample_text(model, tokenizer, f->prompt, f->sample, &generated);
    }
    fmt::print("{}\n", text);
    if (log) {
      // "output" is the text printed (the prompt as decoded, and its continuation; without the newline),
      // so a printed result can be matched to its entry by its hash.
      nlohmann::json extra = {
          {"checkpoint", logged_path(run.string(), dir)},
          {"step", manifest.state.step},
          {"model_sha256", manifest.json["files"].value("model.safetensors", "")},
          {"max_tokens", f->sample.max_tokens},
          {"temperature", std::stod(fmt::format("{}", f->sample.temperature))},  // as typed, not widened
          {"top_k", f->sample.top_k},
          {"seed", f->sample.seed},
          {"generated_tokens", generated},
          {"weights", f->weights}};
      log_inference(*log, f->prompt, text, f->log_text, extra);
      if (signer) {
        log->write_head(&*signer);
      } else if (log->signing_keys().empty()) {
        log->write_head(nullptr);
      } else {
        log_warn(
            "{}: the log's heads are signed; this entry stays unsealed until the next head (give "
            "--audit-key to seal it now)",
            audit_log_path(run.string()));
      }
    }
    return 0;
  };
}

}  // namespace triad::cli
