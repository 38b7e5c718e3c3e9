#pragma once
// Two pieces of the training step (train/trainer.cc): the step's totals summed over the ranks, and the
// speed a test gives a rank under --balance.

#include <vector>

#include "triad/comm/context.h"
#include "triad/train/batch_gradient.h"

namespace triad {

// Σ over the ranks of each total, of `stop` (the ranks a stop signal reached: stop_signal.h) and of
// `seconds` (--balance: each data-parallel rank's batch-gradient time, from one rank of it), in one
// collective.
BatchTotals sum_over_ranks(comm::Context& context, BatchTotals mine, double* stop,
                           std::vector<double>* seconds);

// Tests make a rank look slow without being slow: TRIAD_TEST_SLOW_RANK=R:F replaces the measured seconds
// by a model machine where every data-parallel rank trains 1000 rows a second and rank R F times fewer, so
// that --balance splits the same way on any machine however loaded. 0 (measure) when unset.
double test_rows_per_second(int data_rank);

}  // namespace triad
