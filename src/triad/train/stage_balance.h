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
// split the user gives is kept as given.
//
// --balance online starts from the same measured split (or the one given) and measures the stages as they
// train: after each step every stage's busy time (its slowest copy's) and the step's time go to
// parallel::StageBalancer, and when it finds a split 10 % faster the trainer moves blocks by way of a
// checkpoint of that step (Trainer::move_stages), the new split recorded in the run's options.

#include <string>

#include "triad/comm/context.h"
#include "triad/parallel/shared_cores.h"
#include "triad/train/options.h"

namespace triad {

// Whether the options ask for it: --balance static or online, --pipeline-parallel > 1, no --pipeline-split.
bool balances_stages(const TrainOptions& options);

// Collective over every rank. The measured split as --pipeline-split's "3,1", and a line saying what was
// measured and chosen in `*said`. Where stages share CPUs, the ranks of each group time their block in
// turns (a core's speed each) and the split is the one whose simulated step is shortest.
std::string measured_pipeline_split(comm::Context& context, const TrainOptions& options, std::string* said);

// Collective over every rank. Which stages take turns on shared CPUs, from where the ranks run
// (comm/placement.h), for --balance's proposals (parallel::StageBalancer, measured_pipeline_split).
parallel::StageSharing stage_sharing(comm::Context& context, const TrainOptions& options);

// TRIAD_TEST_SLOW_RANK=R:F for tests: a block takes 1 ms on every rank and F ms on world rank R, so the
// split is the same on any machine however loaded. 0 (measure) when unset.
double test_block_seconds(int rank);

// One block's forward and backward on a micro-batch of random activations, in seconds: the median of three
// timed passes after a warm-up.
double time_one_block(const TrainOptions& options, int world);

}  // namespace triad
