#pragma once
// --layout auto: the data × tensor × pipeline layout, micro-batches, schedule, ZeRO-1 and codec that the
// planner (parallel/planner.h) predicts fastest for this model, batch and job within each rank's share of
// the node's memory — what `triad plan` would print first. Every rank computes the same ranking: the
// speeds come from --topology, or from rank 0's SGEMM measurement, sent to all.
//
// With --layout-trials N the prediction only shortlists: the fastest predicted layout of each data × tensor
// × pipeline shape, up to N shapes predicted within kTrialMargin of the fastest, is timed for a few steps
// (Trainer::time_layout) and the fastest measured is trained. Variants of one shape (ZeRO-1, codec,
// micro-batches) are predicted within a few per cent of each other, which a short trial cannot resolve
// either; shapes are where the model's errors (ranks taking turns on shared cores, docs/parallel.md) can
// reorder the ranking.

#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/parallel/planner.h"
#include "triad/train/options.h"

namespace triad {

struct LayoutCandidate {
  parallel::PlannedLayout planned;
  TrainOptions options;    // the given options with this layout's flags set
  double measured_ms = 0;  // its trial's median step, when timed
  std::string name() const { return planned.choice.name(); }
  double predicted_ms() const { return planned.time.step() * 1e3; }
};

struct LayoutRanking {
  std::vector<LayoutCandidate> fitting;  // the layouts these options can run within the cap, fastest first
  size_t priced = 0;                     // layouts the planner priced
  double memory_cap = 0;                 // bytes per rank
  std::string speed;                     // where the compute speeds came from
};

// Trials of layouts predicted slower than this times the fastest are not run: the planner's predictions
// were within ±15 % of measured steps here (docs/parallel.md).
inline constexpr double kTrialMargin = 1.3;

// Collective. The planner's ranking for options.layout == "auto"; a usage error when no layout fits. The
// model's vocabulary must be known.
LayoutRanking rank_layouts(comm::Context& context, const TrainOptions& options);

// The layouts worth timing: the first (fastest predicted) of each data × tensor × pipeline shape, in the
// ranking's order, predicted within kTrialMargin of the first; at most `trials`.
std::vector<LayoutCandidate> trial_candidates(const std::vector<LayoutCandidate>& fitting, int trials);

// One line saying what was chosen, among how many, from which speeds, and what the runner-up shape was.
std::string describe_choice(const LayoutRanking& ranking, const LayoutCandidate& chosen);

}  // namespace triad
