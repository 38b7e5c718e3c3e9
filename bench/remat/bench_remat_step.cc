// One rematerialisation measurement for bench/remat_sweep: a training step (forward + backward) of the
// benchmark GPT under one planner and budget.
//
//   bench_remat_step --config B|C --planner NAME --budget FRACTION --mode time|memory [--steps 4]
//
// mode time:   alternates steps with the plan and with no remat (same process, same data), and prints both
//              median step times, so their ratio does not drift with the machine.
// mode memory: runs the plan alone and prints the arena's peak, the prediction and the process's peak RSS.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "triad/core/memory.h"
#include "triad/core/parallel.h"
#include "triad/core/rng.h"
#include "triad/remat/controller.h"
#include "triad/remat/planner.h"

using namespace triad;

int main(int argc, char** argv) {
  std::string config = "B", planner = "optimal", mode = "time";
  double fraction = 1.0;
  int steps = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i], v = argv[i + 1];
    if (f == "--config")
      config = v;
    else if (f == "--planner")
      planner = v;
    else if (f == "--budget")
      fraction = std::atof(v.c_str());
    else if (f == "--mode")
      mode = v;
    else if (f == "--steps")
      steps = std::atoi(v.c_str());
  }
  set_threads(2);
  GptConfig c = config == "C" ? GptConfig{12, 768, 12, 128, 32000} : GptConfig{6, 384, 6, 256, 16384};
  const int B = config == "C" ? 4 : 8, T = c.seq_len;
  Gpt<float> model(c);
  model.init_weights(1);
  Rng rng(3);
  std::vector<int32_t> x(static_cast<size_t>(B) * T), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(c.vocab));
    y[i] = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(c.vocab));
  }
  // Profile as the trainer does: one forward that keeps nothing, then two for stable times.
  ActivationProfile profile = ActivationProfile::for_shape(c, B, T);
  for (int i = 0; i < 3; ++i) {
    model.forward(x.data(), y.data(), B, T, Gpt<float>::Pass::kInference);
    model.release_activations();
    update_profile_times(&profile, model, i == 0 ? 1.0 : 0.5);
  }
  const size_t none_peak = simulate(RematPlan::keep_all(c.layers), profile).peak_bytes;
  const size_t budget = static_cast<size_t>(fraction * static_cast<double>(none_peak));
  const size_t minimum = minimum_budget(profile);
  RematPlan plan;
  try {
    plan = make_plan(parse_planner(planner), profile, budget);
  } catch (const std::exception& e) {
    fmt::print(
        "{}\n",
        nlohmann::json{{"error", e.what()}, {"minimum_bytes", minimum}, {"none_bytes", none_peak}}.dump());
    return 0;
  }
  const Prediction predicted = simulate(plan, profile);
  auto step = [&](const RematPlan& p) {
    model.set_remat_plan(p);
    model.arena().reset_peak();
    auto t0 = std::chrono::steady_clock::now();
    model.zero_grads();
    model.forward(x.data(), y.data(), B, T);
    model.backward(1.0f / static_cast<float>(B * T));
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  nlohmann::json out = {{"config", config},
                        {"planner", planner},
                        {"budget_fraction", fraction},
                        {"budget_bytes", budget},
                        {"none_bytes", none_peak},
                        {"minimum_bytes", minimum},
                        {"predicted_peak_bytes", predicted.peak_bytes},
                        {"predicted_recompute_ms", predicted.recompute_seconds * 1e3},
                        {"dropped_units", plan.dropped_units()}};
  if (mode == "time") {
    std::vector<double> with, without;
    step(plan);  // warm-up both
    step(RematPlan::keep_all(c.layers));
    for (int i = 0; i < steps; ++i) {
      with.push_back(step(plan));
      out["recompute_ms"] = model.recompute_seconds() * 1e3;
      without.push_back(step(RematPlan::keep_all(c.layers)));
    }
    std::sort(with.begin(), with.end());
    std::sort(without.begin(), without.end());
    out["step_ms"] = with[with.size() / 2] * 1e3;
    out["none_step_ms"] = without[without.size() / 2] * 1e3;
  } else {
    for (int i = 0; i < 2; ++i) step(plan);
    out["peak_activation_bytes"] = model.arena().peak_bytes();
    out["peak_rss_bytes"] = peak_rss_bytes();
  }
  fmt::print("{}\n", out.dump());
  return 0;
}
