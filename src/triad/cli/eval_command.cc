#include <fmt/format.h>

#include <memory>

#include "triad/cli/cli.h"
#include "triad/compress/int8_model.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/parallel.h"
#include "triad/train/checkpoint.h"
#include "triad/train/evaluate.h"
#include "triad/train/tokenizer_agreement.h"

namespace triad::cli {

Runner add_eval_command(CLI::App& root) {
  struct EvalFlags {
    std::string checkpoint, data, split = "val", weights = "fp32";
    int batches = 0, batch = 8, seq_len = 0, threads = default_threads();
  };
  auto f = std::make_shared<EvalFlags>();
  CLI::App* cmd =
      root.add_subcommand("eval", "Mean next-token loss and perplexity of a checkpoint on prepared data.");
  cmd->footer(
      "Prints {\"val_loss\": ..., \"val_ppl\": ..., \"tokens\": ..., \"seconds\": ...} on stdout; seconds: "
      "the evaluation's wall time (with --weights int8, quantizing included).");
  add_config_option(*cmd);
  cmd->add_option("--checkpoint", f->checkpoint,
                  "A checkpoint directory, or a run directory (its newest checkpoint)")
      ->type_name("CKPT");
  cmd->add_option("--data", f->data, "Prepared data directory; default: the one the run was trained on")
      ->type_name("DIR");
  cmd->add_option("--split", f->split, "Which split to evaluate")->check(CLI::IsMember({"val", "train"}));
  cmd->add_option("--batches", f->batches, "Batches to evaluate (0: the whole split)")->check(non_negative());
  cmd->add_option("--batch", f->batch, "Sequences per batch")->check(positive());
  cmd->add_option("--seq-len", f->seq_len, "Context length (0: the model's; may not exceed it)")
      ->check(non_negative());
  cmd->add_option("--threads", f->threads, "Threads")->check(positive());
  cmd->add_option("--weights", f->weights,
                  "fp32, or int8: post-training quantized linear layers (docs/compress.md)")
      ->check(CLI::IsMember({"fp32", "int8"}));
  return [f]() {
    if (f->checkpoint.empty()) fail_usage("--checkpoint is required");
    set_threads(f->threads);
    std::string dir = resolve_checkpoint(f->checkpoint);
    CheckpointManifest manifest = read_checkpoint_manifest(dir);
    const int seq_len = f->seq_len > 0 ? f->seq_len : manifest.model.seq_len;
    if (seq_len > manifest.model.seq_len) {
      fail_usage("--seq-len {} is longer than the model's context of {} tokens ({})", seq_len,
                 manifest.model.seq_len, dir);
    }
    Gpt<float> model(manifest.model);
    load_checkpoint_weights(dir, &model);
    const std::string data_dir = f->data.empty() ? manifest.options.data_dir : f->data;
    TokenDataset data = TokenDataset::open(data_dir, f->split);
    require_same_tokenizer(checkpoint_tokenizer_hash(dir, manifest.json), data_tokenizer_hash(data_dir));
    if (static_cast<int>(data.vocab_size()) != manifest.model.vocab) {
      fail("the data's vocabulary has {} tokens, the checkpoint's model {}: a different tokenizer",
           data.vocab_size(), manifest.model.vocab);
    }
    const auto start = Clock::now();
    EvalResult r;
    if (f->weights == "int8") {
      Int8Gpt int8(model);
      auto forward = [&](const int32_t* inputs, const int32_t* targets, int B, int T) {
        return int8.loss(inputs, targets, B, T);
      };
      r = combine_shares(evaluate_share(forward, data, f->batches, f->batch, seq_len, 0, 1));
    } else {
      r = evaluate(model, data, f->batches, f->batch, seq_len);
    }
    const double seconds = seconds_since(start);
    fmt::print("{}\n", nlohmann::json{{"val_loss", r.loss},
                                      {"val_ppl", r.perplexity()},
                                      {"tokens", r.tokens},
                                      {"checkpoint", dir},
                                      {"split", f->split},
                                      {"weights", f->weights},
                                      {"seconds", seconds}}
                           .dump());
    return 0;
  };
}

}  // namespace triad::cli
