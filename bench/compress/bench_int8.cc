// Float against int8 weights (src/triad/compress/int8_model.h) on one checkpoint, in one process:
// validation loss and evaluation tokens/s on the same batches, and KV-cache decoding tokens/s on the same
// tokens. The two are interleaved, `--repeats` times each, and the medians reported, so a neighbour's load
// on the machine falls on both alike.
//
//   bench_int8 CKPT [--batches N] [--batch B] [--threads T] [--repeats R]
// Prints one JSON object: each measurement for fp32 and int8 and their ratio.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/compress/int8_model.h"
#include "triad/core/clock.h"
#include "triad/core/parallel.h"
#include "triad/train/checkpoint.h"
#include "triad/train/evaluate.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  using namespace triad;
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_int8 CKPT [--batches N] [--batch B] [--threads T] [--repeats R]\n");
    return 2;
  }
  int batches = 10, batch = 8, threads = 2, repeats = 3;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--batches") batches = value;
    if (flag == "--batch") batch = value;
    if (flag == "--threads") threads = value;
    if (flag == "--repeats") repeats = value;
  }
  set_threads(threads);
  const std::string dir = resolve_checkpoint(argv[1]);
  CheckpointManifest manifest = read_checkpoint_manifest(dir);
  Gpt<float> model(manifest.model);
  load_checkpoint_weights(dir, &model);
  auto t0 = Clock::now();
  Int8Gpt int8(model);
  const double quantize_seconds = seconds_since(t0);
  TokenDataset data = TokenDataset::open(manifest.options.data_dir, "val");
  const int T = manifest.model.seq_len;

  std::vector<double> eval_s[2], decode_s[2];
  double loss[2] = {0, 0};
  uint64_t tokens = 0;
  const int decode_tokens = T;
  std::vector<int32_t> prompt(static_cast<size_t>(decode_tokens));
  for (int i = 0; i < decode_tokens; ++i) prompt[i] = (i * 7919) % manifest.model.vocab;
  for (int r = 0; r < repeats; ++r) {
    for (int w = 0; w < 2; ++w) {
      t0 = Clock::now();
      EvalResult e;
      if (w == 0) {
        e = evaluate(model, data, batches, batch, T);
      } else {
        auto forward = [&](const int32_t* in, const int32_t* tg, int B, int TT) {
          return int8.loss(in, tg, B, TT);
        };
        e = combine_shares(evaluate_share(forward, data, batches, batch, T, 0, 1));
      }
      eval_s[w].push_back(seconds_since(t0));
      loss[w] = e.loss;
      tokens = e.tokens;
      // Decoding: T positions, one token each (the cost of generating T tokens).
      t0 = Clock::now();
      if (w == 0) {
        KvDecoder d(model);
        for (int32_t t : prompt) d.step(t);
      } else {
        Int8Decoder d(int8);
        for (int32_t t : prompt) d.step(t);
      }
      decode_s[w].push_back(seconds_since(t0));
    }
  }
  const double e32 = tokens / median(eval_s[0]), e8 = tokens / median(eval_s[1]);
  const double d32 = decode_tokens / median(decode_s[0]), d8 = decode_tokens / median(decode_s[1]);
  nlohmann::json out = {
      {"checkpoint", dir},
      {"model", manifest.model.describe()},
      {"threads", threads},
      {"eval_tokens", tokens},
      {"val_loss_fp32", loss[0]},
      {"val_loss_int8", loss[1]},
      {"val_loss_change", loss[1] / loss[0] - 1},
      {"eval_tokens_per_s_fp32", e32},
      {"eval_tokens_per_s_int8", e8},
      {"eval_speedup", e8 / e32},
      {"decode_tokens_per_s_fp32", d32},
      {"decode_tokens_per_s_int8", d8},
      {"decode_speedup", d8 / d32},
      {"weight_bytes_fp32", model.num_params() * sizeof(float)},
      {"weight_bytes_int8", int8.weight_bytes()},
      {"quantize_seconds", quantize_seconds},
      {"int8_eval_seconds",
       {{"block_linears", int8.seconds().block_linears},
        {"head", int8.seconds().head},
        {"loss", int8.seconds().loss},
        {"rest", int8.seconds().rest}}},
  };
  fmt::print("{}\n", out.dump(2));
  return 0;
}
