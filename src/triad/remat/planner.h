#pragma once
// Rematerialisation planning (paper §3.2.3, Eq. 8–10 and 13; Algorithm 1).
//
// An ActivationProfile holds, for one (batch, sequence) shape, every unit's exact bytes (as the arena will
// allocate them) and its recompute cost τ_re: the measured time of the op that produces it. simulate()
// replays a step's schedule (remat/schedule.h, the engine's own order of work) and returns the peak of live
// activation bytes and the total recompute time — the engine's arena then measures the same peak.
//
// Planners:
//   none       keep everything
//   full       keep only block inputs; recompute each block before its backward
//   sqrt       Chen et al. 2016: keep every ceil(sqrt(L))-th block input, recompute segments
//   selective  Megatron-style: drop the attention probabilities and the GELU output (large, cheap)
//   greedy     Algorithm 1: order units by τ_re / m, store while the stored bytes fit the budget
//   optimal    minimum total recompute time with the simulated peak within the budget, exactly, by dynamic
//              programming over blocks (see planner.cc)

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "triad/model/gpt.h"
#include "triad/remat/plan.h"

namespace triad {

struct ActivationProfile {
  int layers = 0;
  // Indexed [block + 1][kind]: block -1 holds the whole-model units (embed, lnf, logits, loss, scratch).
  std::vector<std::array<size_t, static_cast<size_t>(Act::kCount)>> bytes;
  std::vector<std::array<double, static_cast<size_t>(Act::kCount)>> seconds;

  size_t bytes_of(int block, Act kind) const {
    return bytes[static_cast<size_t>(block + 1)][static_cast<size_t>(kind)];
  }
  double seconds_of(int block, Act kind) const {
    return seconds[static_cast<size_t>(block + 1)][static_cast<size_t>(kind)];
  }
  // Sizes for a (B, T) step of `config`; times all zero.
  static ActivationProfile for_shape(const GptConfig& config, int B, int T);
  // Takes the op times of the model's last forward; `weight` in (0, 1] blends them into the current ones
  // (1: replace). Returns the largest relative change of a unit's time.
  double update_times(const Gpt<float>& model, double weight);
};

struct Prediction {
  size_t peak_bytes = 0;
  double recompute_seconds = 0;
};
Prediction simulate(const RematPlan& plan, const ActivationProfile& profile);

enum class PlannerKind { kNone, kFull, kSqrt, kSelective, kGreedy, kOptimal };
PlannerKind parse_planner(const std::string& name);  // usage error naming the choices
const char* planner_name(PlannerKind kind);

// The plan of `kind`; `budget` (peak activation bytes) steers greedy and optimal. optimal fails with a usage
// error naming the minimum when no plan fits.
RematPlan make_plan(PlannerKind kind, const ActivationProfile& profile, size_t budget);

// The least peak any plan reaches (what optimal needs at the least).
size_t minimum_budget(const ActivationProfile& profile);

// "512MiB", "2GiB", "1.5GB", "800MB", "1048576" (bytes) or "0.5x" (that fraction of `none_peak`).
size_t parse_budget(const std::string& text, size_t none_peak);
std::string format_bytes(size_t bytes);

}  // namespace triad
