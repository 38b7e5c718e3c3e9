#pragma once
// How the ranks of a job divide the work: data × tensor × pipeline = world (paper §3.2.1, Tier I). A rank's
// coordinates put tensor parallelism innermost — its all-reduces come twice per block, so its ranks should
// share a node — then data, then pipeline stages outermost, as Megatron-LM places them:
//
//   rank = (pipeline_index × data + data_index) × tensor + tensor_index
//
// Each group (the ranks that differ in one coordinate only) is a communicator split from the job's
// (MPI_Comm_split): the data-parallel group averages gradients, the tensor group splits each layer, the
// pipeline group passes activations between stages. Until tensor and pipeline parallelism are built the
// trainer runs the layout data = world.

#include <mpi.h>

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

// One group of ranks this rank belongs to: a communicator (MPI_COMM_NULL in a single process), this rank's
// index in it and its size.
struct Group {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
};
struct Groups {
  Group data, tensor, pipeline;
};
// Collective over the context's ranks. The communicators belong to the context.
Groups split_groups(comm::Context& context, const Layout& layout);

}  // namespace triad::parallel
