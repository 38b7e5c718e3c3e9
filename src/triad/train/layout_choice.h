#pragma once
// --layout auto: the data × tensor × pipeline layout, micro-batches, schedule, ZeRO-1 and codec that the
// planner (parallel/planner.h) predicts fastest for this model, batch and job within each rank's share of
// the node's memory — what `triad plan` would print first. Every rank computes the same ranking: the
// speeds come from --topology, or from rank 0's SGEMM measurement, sent to all.
//
// With --layout-trials N the prediction only shortlists: up to N layouts predicted within kTrialMargin of
// the fastest, one per data × tensor × pipeline shape and, under pipelines, per micro-batch count and stage
// split, are each timed for a few steps (Trainer::time_layout); the fastest few are timed again and the
// fastest measured is trained. ZeRO-1 and the codec change a step by a per cent or two over shared memory,
// which a short trial cannot resolve, so their variants count as one; the shape, the micro-batches and the
// split are where the model's errors (ranks taking turns on shared cores, docs/parallel.md) reorder the
// ranking — on this 2-core machine the top 20 of 60 four-rank layouts are predicted within 2 %, measured
// within 15 %.

#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/core/statistics.h"
#include "triad/parallel/planner.h"
#include "triad/train/options.h"

namespace triad {

struct LayoutCandidate {
  parallel::PlannedLayout planned;
  TrainOptions options;          // the given options with this layout's flags set
  std::vector<double> trial_ms;  // its trials' timed steps
  std::string name() const { return planned.choice.name(); }
  double measured_ms() const { return median(trial_ms); }  // 0 when not timed
  double predicted_ms() const { return planned.time.step() * 1e3; }
};

struct LayoutRanking {
  std::vector<LayoutCandidate> fitting;  // the layouts these options can run within the cap, fastest first
  size_t priced = 0;                     // layouts the planner priced
  double memory_cap = 0;                 // bytes per rank
  std::string memory_note;               // how --memory-limit constrained the ranking ("; ..."), if given
  std::string speed;                     // where the compute speeds came from
};

// Trials of layouts predicted slower than this times the fastest are not run: the planner's predictions
// were within ±15 % of measured steps here (docs/parallel.md).
inline constexpr double kTrialMargin = 1.3;

// Collective. The planner's ranking for options.layout == "auto"; a usage error when no layout fits. With
// --memory-limit, only layouts it keeps as planned, or when there are none, those it fits by 8-bit states or
// a remat budget (fit_training_memory): a trial or the run never meets a refusal the ranking missed. The
// model's vocabulary must be known. `resumed`: only layouts with the options' --grad-accum, --zero and
// --grad-compression (a checkpoint resumes at any layout, but its optimizer state is for those).
LayoutRanking rank_layouts(comm::Context& context, const TrainOptions& options, bool resumed = false);

// The layouts worth timing: in the ranking's order, predicted within kTrialMargin of the first, the first
// (fastest predicted) of each data × tensor × pipeline shape and, with stages, micro-batches and split;
// at most `trials`.
std::vector<LayoutCandidate> trial_candidates(const std::vector<LayoutCandidate>& fitting, int trials);

// One line saying what was chosen, among how many, from which speeds, and what the runner-up shape was.
std::string describe_choice(const LayoutRanking& ranking, const LayoutCandidate& chosen);

}  // namespace triad
