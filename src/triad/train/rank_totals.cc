#include "triad/train/rank_totals.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "triad/comm/collectives.h"
#include "triad/core/error.h"

namespace triad {

BatchTotals sum_over_ranks(comm::Context& context, BatchTotals mine, double* stop,
                           std::vector<double>* seconds) {
  std::vector<double> all = {mine.loss_sum,  mine.loss_count, mine.hard_loss_sum,
                             mine.sequences, mine.clipped,    *stop};
  all.insert(all.end(), seconds->begin(), seconds->end());
  comm::allreduce_sum(context, all.data(), static_cast<int>(all.size()),
                      seconds->empty() ? "step loss" : "step loss and times");
  std::copy(all.begin() + 6, all.end(), seconds->begin());
  *stop = all[5];
  return {all[0], all[1], all[2], all[3], all[4]};
}

double test_rows_per_second(int data_rank) {
  const char* spec = std::getenv("TRIAD_TEST_SLOW_RANK");
  if (!spec || !*spec) return 0;
  int rank = -1;
  double factor = 0;
  if (std::sscanf(spec, "%d:%lf", &rank, &factor) != 2 || !(factor > 0)) {
    fail_usage("TRIAD_TEST_SLOW_RANK={} is not RANK:FACTOR", spec);
  }
  return rank == data_rank ? 1000 / factor : 1000;
}

}  // namespace triad
