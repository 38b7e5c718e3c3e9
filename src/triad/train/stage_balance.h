#pragma once
// --balance static under pipeline parallelism (paper §3.4, heterogeneous nodes): pipeline stages get blocks
// in proportion to their measured speed, so that a slow rank's stage is short and the pipeline's beat — set
// by its slowest stage — is as fast as it can be.
//
// At the start of a run every rank times one block's forward and backward on its micro-batch (one warm-up
// pass, then the median of three); a stage is as fast as the slowest of its ranks (its data-parallel and
// tensor-parallel copies wait for each other). parallel::balanced_split then gives the counts that make the
// slowest stage fastest, the final LayerNorm and LM head counted on the last stage. The counts become the
// run's --pipeline-split, recorded with its options: a resumed run keeps them (and stays bit-exact), and a
// split the user gives is kept as given. Re-balancing stages during a run would move blocks and their
// optimizer state between ranks; it is not done.

#include <string>

#include "triad/comm/context.h"
#include "triad/train/options.h"

namespace triad {

// Whether the options ask for it: --balance static, --pipeline-parallel > 1, no --pipeline-split.
bool balances_stages(const TrainOptions& options);

// Collective over every rank. The measured split as --pipeline-split's "3,1", and a line saying what was
// measured and chosen in `*said`.
std::string measured_pipeline_split(comm::Context& context, const TrainOptions& options, std::string* said);

// One block's forward and backward on a micro-batch of random activations, in seconds: the median of three
// timed passes after a warm-up.
double time_one_block(const TrainOptions& options, int world);

}  // namespace triad
