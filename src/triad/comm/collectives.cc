#include "triad/comm/collectives.h"

#include <climits>

#include "triad/comm/pieces.h"
#include "triad/core/error.h"

namespace triad::comm {

void allreduce_sum(Context& context, double* values, int count, const std::string& what) {
  if (context.world() == 1) return;
  MPI_Request request;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, context.comm(), &request), what);
  context.wait(&request, 1, what);
}

namespace {

constexpr size_t kAllreducePieceBytes = 256 << 10;

int checked_count(size_t count, const std::string& what) {
  if (count > static_cast<size_t>(INT_MAX)) fail("{}: {} values exceed one MPI message", what, count);
  return static_cast<int>(count);
}

// In pieces of 256 KiB, all in flight (pieces.h): over TCP tp2's activation sums of 3 MiB took config B's
// step from 10.5-10.8 s whole to 8.7-8.9 s (1 MiB pieces: 9.1-9.3; docs/results/2026-12-06-codec-pieces.md).
void allreduce_floats(Context& context, float* values, size_t count, MPI_Op op, const std::string& what) {
  if (context.world() == 1) return;
  checked_count(count, what);
  PiecedCollective reduce(kAllreducePieceBytes);
  reduce.start_allreduce(values, count, op, context.comm(), what.c_str());
  context.wait(reduce.requests(), reduce.size(), what);
}

}  // namespace

void allreduce_sum(Context& context, float* values, size_t count, const std::string& what) {
  allreduce_floats(context, values, count, MPI_SUM, what);
}

void allreduce_max(Context& context, float* values, size_t count, const std::string& what) {
  allreduce_floats(context, values, count, MPI_MAX, what);
}

MPI_Request start_send(Context& context, const float* data, size_t count, int peer, int tag,
                       const std::string& what) {
  MPI_Request request;
  check_mpi(MPI_Isend(data, checked_count(count, what), MPI_FLOAT, peer, tag, context.comm(), &request),
            what);
  return request;
}

void send(Context& context, const float* data, size_t count, int peer, int tag, const std::string& what) {
  MPI_Request request = start_send(context, data, count, peer, tag, what);
  context.wait(&request, 1, what);
}

void receive(Context& context, float* data, size_t count, int peer, int tag, const std::string& what) {
  MPI_Request request;
  check_mpi(MPI_Irecv(data, checked_count(count, what), MPI_FLOAT, peer, tag, context.comm(), &request),
            what);
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
