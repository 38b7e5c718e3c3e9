#pragma once
// --layout auto: the data × tensor × pipeline layout, micro-batches, schedule, ZeRO-1 and codec that the
// planner (parallel/planner.h) predicts fastest for this model, batch and job within each rank's share of
// the node's memory — what `triad plan` would print first. Every rank computes the same choice: the
// speeds come from --topology, or from rank 0's SGEMM measurement, sent to all.

#include <string>

#include "triad/comm/context.h"
#include "triad/train/options.h"

namespace triad {

// Collective. With --layout auto, the options with the chosen layout's flags set (and a line saying what was
// chosen in `*said`); otherwise the options as they are. The model's vocabulary must be known.
TrainOptions choose_layout(comm::Context& context, const TrainOptions& options, std::string* said);

}  // namespace triad
