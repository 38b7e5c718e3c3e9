// How long the planners take, L = 6 .. 96 blocks of a GPT-2-small-sized block (C = 768, 12 heads, B = 4,
// T = 128), over budgets from what no remat needs down to the minimum. Unit times come from a FLOP model
// (50 GFLOP/s for products, 5 GB/s for the elementwise ops) with ±15 % per-block noise, as measured profiles
// have. The reference is the greedy planner (Algorithm 1) timed in the same run; the row also checks that
// the optimal plan's recompute never grows with the budget and never exceeds greedy's.
//
//   build/bench_remat_plan_time [max layers, default 96] [budgets, default 12]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "triad/remat/planner.h"

using namespace triad;

namespace {

ActivationProfile model_profile(int layers) {
  GptConfig c{.layers = layers, .d_model = 768, .heads = 12, .seq_len = 128, .vocab = 32000};
  const double B = 4, T = 128, C = 768, BT = B * T, BTC = BT * C, V = 32000;
  ActivationProfile p = ActivationProfile::for_shape(c, 4, 128);
  const double flops = 50e9, bytes = 5e9;
  auto set = [&](int l, Act k, double seconds) {
    p.seconds[static_cast<size_t>(l + 1)][static_cast<size_t>(k)] = seconds;
  };
  std::mt19937 rng(static_cast<uint32_t>(layers));
  std::uniform_real_distribution<double> noise(0.85, 1.15);
  set(-1, Act::kLogits, 2 * BT * C * V / flops);
  for (int l = 0; l < layers; ++l) {
    set(l, Act::kLn1, 8 * BTC / bytes * noise(rng));
    set(l, Act::kQkv, 2 * BT * C * 3 * C / flops * noise(rng));
    set(l, Act::kAttProbs, 2 * B * T * T * C / flops * noise(rng));
    set(l, Act::kAttOut, 2 * B * T * T * C / flops * noise(rng));
    set(l, Act::kRes2, 2 * BT * C * C / flops * noise(rng));
    set(l, Act::kLn2, 8 * BTC / bytes * noise(rng));
    set(l, Act::kFc, 2 * BT * C * 4 * C / flops * noise(rng));
    set(l, Act::kGelu, 32 * BTC / bytes * noise(rng));
    set(l, Act::kBlockOut, 2 * BT * 4 * C * C / flops * noise(rng));
  }
  return p;
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() * 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  const int max_layers = argc > 1 ? std::atoi(argv[1]) : 96;
  const int budgets = argc > 2 ? std::atoi(argv[2]) : 12;
  std::printf("%6s %10s %12s %12s %12s %9s %10s %14s\n", "layers", "min_budget", "optimal_ms", "worst_ms",
              "greedy_ms", "ratio", "monotone", "vs_greedy");
  for (int L : {6, 12, 24, 48, 96}) {
    if (L > max_layers) break;
    ActivationProfile p = model_profile(L);
    const size_t none = simulate(RematPlan::keep_all(L), p).peak_bytes;
    auto t0 = std::chrono::steady_clock::now();
    const size_t lo = minimum_budget(p);
    const double min_ms = ms_since(t0);
    double total = 0, worst = 0, greedy_total = 0, previous = -1, worst_vs_greedy = 0;
    bool monotone = true;
    for (int i = 0; i < budgets; ++i) {
      const size_t budget = none - (none - lo) * static_cast<size_t>(i) / static_cast<size_t>(budgets - 1);
      t0 = std::chrono::steady_clock::now();
      const RematPlan greedy = make_plan(PlannerKind::kGreedy, p, budget);
      greedy_total += ms_since(t0);
      t0 = std::chrono::steady_clock::now();
      const RematPlan optimal = make_plan(PlannerKind::kOptimal, p, budget);
      const double ms = ms_since(t0);
      total += ms;
      worst = std::max(worst, ms);
      const double seconds = simulate(optimal, p).recompute_seconds;
      if (previous >= 0 && seconds < previous - 1e-12) monotone = false;  // budgets shrink along the sweep
      previous = seconds;
      const Prediction g = simulate(greedy, p);
      if (g.peak_bytes <= budget && g.recompute_seconds > 0)
        worst_vs_greedy = std::max(worst_vs_greedy, seconds / g.recompute_seconds);
    }
    std::printf("%6d %9.1f%% %12.2f %12.2f %12.3f %9.0f %10s %13.3fx\n", L, 100.0 * lo / none,
                total / budgets, worst, greedy_total / budgets, total / greedy_total, monotone ? "yes" : "NO",
                worst_vs_greedy);
    std::printf("       (minimum_budget: %.1f ms)\n", min_ms);
  }
  return 0;
}
