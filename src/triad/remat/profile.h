#pragma once
// What the rematerialisation planners plan against (paper §3.2.3, Eq. 8–10 and 13): for one (batch,
// sequence) shape, every activation unit's exact bytes (as the arena will allocate them, from
// model/dataflow.h's table) and its recompute cost τ_re, the measured time of the op that produces it.
// simulate() replays a step's schedule (model/schedule.h, the engine's own order of work) and returns the
// peak of live activation bytes and the total recompute time — the engine's arena then measures the same
// peak.

#include <array>
#include <cstddef>
#include <vector>

#include "triad/model/config.h"
#include "triad/model/dataflow.h"
#include "triad/model/plan.h"

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
  double& seconds_at(int block, Act kind) {
    return seconds[static_cast<size_t>(block + 1)][static_cast<size_t>(kind)];
  }
  // Sizes for a (B, T) step of `config`; times all zero.
  // tensor: tensor-parallel ranks (each unit of the split layers is 1 / tensor of its whole size).
  static ActivationProfile for_shape(const GptConfig& config, int B, int T, int tensor = 1);
};

struct Prediction {
  size_t peak_bytes = 0;
  double recompute_seconds = 0;
};
Prediction simulate(const RematPlan& plan, const ActivationProfile& profile);

}  // namespace triad
