#include "triad/comm/collectives.h"

#include <climits>

#include "triad/core/error.h"

namespace triad::comm {

void allreduce_sum(Context& context, double* values, int count, const std::string& what) {
  if (context.world() == 1) return;
  MPI_Request request;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, context.comm(), &request), what);
  context.wait(&request, 1, what);
}

void barrier(Context& context, const std::string& what) {
  if (context.world() == 1) return;
  MPI_Request request;
  check_mpi(MPI_Ibarrier(context.comm(), &request), what);
  context.wait(&request, 1, what);
}

void broadcast_from_root(Context& context, uint64_t* words, int count, const std::string& what) {
  if (context.world() == 1) return;
  MPI_Request request;
  check_mpi(MPI_Ibcast(words, count, MPI_UINT64_T, 0, context.comm(), &request), what);
  context.wait(&request, 1, what);
}

std::vector<std::vector<float>> gather_to_root(Context& context, const std::vector<float>& mine,
                                               const std::string& what) {
  const int world = context.world();
  if (world == 1) return {mine};
  if (mine.size() > static_cast<size_t>(INT_MAX))
    fail("{}: {} floats exceed one MPI message", what, mine.size());
  const bool root = context.rank() == 0;
  int count = static_cast<int>(mine.size());
  std::vector<int> counts(root ? world : 0), offsets(root ? world : 0);
  MPI_Request request;
  check_mpi(MPI_Igather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, context.comm(), &request), what);
  context.wait(&request, 1, what);
  std::vector<float> all;
  if (root) {
    size_t total = 0;
    for (int r = 0; r < world; ++r) {
      if (total > static_cast<size_t>(INT_MAX)) fail("{}: too much state for one MPI message", what);
      offsets[r] = static_cast<int>(total);
      total += static_cast<size_t>(counts[r]);
    }
    all.resize(total);
  }
  check_mpi(MPI_Igatherv(mine.data(), count, MPI_FLOAT, all.data(), counts.data(), offsets.data(), MPI_FLOAT,
                         0, context.comm(), &request),
            what);
  context.wait(&request, 1, what);
  std::vector<std::vector<float>> out;
  for (int r = 0; root && r < world; ++r) {
    out.emplace_back(all.begin() + offsets[r], all.begin() + offsets[r] + counts[r]);
  }
  return out;
}

}  // namespace triad::comm
