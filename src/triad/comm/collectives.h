#pragma once
// Small collectives the trainer needs besides gradient averaging: scalars to agree on, a barrier, and the
// per-rank state a checkpoint gathers to rank 0. Each waits through Context::wait (so never longer than
// --comm-timeout) and makes no MPI call in a single process.

#include <cstdint>
#include <string>
#include <vector>

#include "triad/comm/context.h"

namespace triad::comm {

// values[i] = Σ over ranks of values[i], in place.
void allreduce_sum(Context& context, double* values, int count, const std::string& what);
void allreduce_sum(Context& context, float* values, size_t count, const std::string& what);
void allreduce_max(Context& context, float* values, size_t count, const std::string& what);
// Point to point within the context: `count` floats to or from rank `peer`, matched by `tag`.
void send(Context& context, const float* data, size_t count, int peer, int tag, const std::string& what);
void receive(Context& context, float* data, size_t count, int peer, int tag, const std::string& what);
// A send that completes later: wait for the request with context.wait() before touching `data` again.
MPI_Request start_send(Context& context, const float* data, size_t count, int peer, int tag,
                       const std::string& what);
void barrier(Context& context, const std::string& what);
// Every rank receives rank 0's words[0, count), in place.
void broadcast_from_root(Context& context, uint64_t* words, int count, const std::string& what);
// Rank 0 receives every rank's vector (index = rank; lengths may differ); other ranks receive nothing.
std::vector<std::vector<float>> gather_to_root(Context& context, const std::vector<float>& mine,
                                               const std::string& what);

}  // namespace triad::comm
