// Times full training steps of triad's GPT on random tokens, as the trainer runs them (forward, backward
// handing buckets to the DistributedOptimizer, global-norm clip, AdamW), and prints one JSON line: tokens/s
// (median over the timed steps), step time, peak RSS. Driven by bench/train_vs_torch.
//
//   build/bench_train_step --layers 4 --d-model 256 --heads 4 --seq-len 256 --batch 8 --vocab 8192 [--steps
//   6]

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "triad/core/memory.h"
#include "triad/core/parallel.h"
#include "triad/core/rng.h"
#include "triad/model/gpt.h"
#include "triad/parallel/distributed_optimizer.h"

using namespace triad;

int main(int argc, char** argv) {
  GptConfig c;
  int batch = 8, steps = 6, warmup = 2, nthreads = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (f == "--layers")
      c.layers = v;
    else if (f == "--d-model")
      c.d_model = v;
    else if (f == "--heads")
      c.heads = v;
    else if (f == "--seq-len")
      c.seq_len = v;
    else if (f == "--vocab")
      c.vocab = v;
    else if (f == "--batch")
      batch = v;
    else if (f == "--steps")
      steps = v;
    else if (f == "--threads")
      nthreads = v;
    else {
      fmt::print(stderr, "unknown flag {}\n", f);
      return 2;
    }
  }
  set_threads(nthreads);
  Gpt<float> model(c);
  model.init_weights(1);
  std::unique_ptr<comm::Context> context = comm::Context::open();
  parallel::DistributedOptimizer optimizer(*context, model, parallel::DistributedOptimizerOptions{});
  const int T = c.seq_len;
  std::vector<int32_t> inputs(static_cast<size_t>(batch) * T), targets(inputs.size());
  Rng rng(7);
  for (size_t i = 0; i < inputs.size(); ++i) {
    inputs[i] = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(c.vocab));
    targets[i] = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(c.vocab));
  }
  std::vector<double> seconds;
  for (int s = 0; s < warmup + steps; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    model.zero_grads();
    model.forward(inputs.data(), targets.data(), batch, T);
    model.backward(1.0f / static_cast<float>(batch * T), optimizer.hook());
    optimizer.finish_reduction();
    optimizer.step(1e-4f, optimizer.grad_norm());
    if (s >= warmup)
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double median = seconds[seconds.size() / 2];
  fmt::print("{}\n", nlohmann::json{{"impl", "triad"},
                                    {"tokens_per_s", batch * T / median},
                                    {"step_ms", median * 1e3},
                                    {"params", model.num_params()},
                                    {"peak_rss_bytes", peak_rss_bytes()},
                                    {"peak_activation_bytes", model.arena().peak_bytes()}}
                         .dump());
  return 0;
}
