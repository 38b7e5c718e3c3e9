#pragma once
// How the ranks of a job divide the work: data × tensor × pipeline = world (paper §3.2.1, Tier I). A rank's
// coordinates put tensor parallelism innermost — its all-reduces come twice per block, so its ranks should
// share a node — then data, then pipeline stages outermost, as Megatron-LM places them:
//
//   rank = (pipeline_index × data + data_index) × tensor + tensor_index
//
// Each group (the ranks that differ in one coordinate only) is a communicator split from the job's
// (MPI_Comm_split): the data-parallel group averages gradients, the tensor group splits each layer, the
// pipeline group passes activations between stages.

#include <memory>
#include <vector>

#include "triad/comm/context.h"

namespace triad::parallel {

struct Layout {
  int data = 1, tensor = 1, pipeline = 1;
  int world() const { return data * tensor * pipeline; }
  // The layout of `world` ranks with these tensor and pipeline degrees, data taking the rest; a usage
  // error naming the flags when they do not divide the world.
  static Layout of(int world, int tensor = 1, int pipeline = 1);
};

struct Coordinates {
  int data = 0, tensor = 0, pipeline = 0;
};
Coordinates coordinates(const Layout& layout, int rank);
int rank_of(const Layout& layout, const Coordinates& at);
// The ranks of pipeline stage `stage` (its data and tensor groups).
std::vector<int> stage_ranks(const Layout& layout, int stage);

// The groups this rank belongs to, each a context over its ranks (index = the varying coordinate), and two
// more that the model's parts need: `model`, the tensor × pipeline ranks that hold one copy of the model
// (the gradient norm sums over it), and `tied`, the first and last pipeline stages, which both hold the
// token embedding (the LM head is tied to it) and add their gradients of it (nullptr on middle stages and
// without pipeline parallelism). In a single process every group is that process alone.
struct Groups {
  std::unique_ptr<comm::Context> data, tensor, pipeline, model, tied;
};
// Collective over the context's ranks.
Groups split_groups(comm::Context& context, const Layout& layout);

}  // namespace triad::parallel
