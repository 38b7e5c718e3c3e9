#include "triad/parallel/layout.h"

#include "triad/core/error.h"

namespace triad::parallel {

Layout Layout::of(int world, int tensor, int pipeline) {
  if (tensor < 1 || pipeline < 1) fail_usage("--tensor-parallel and --pipeline-parallel must be at least 1");
  if (world % (tensor * pipeline) != 0) {
    fail_usage("{} ranks do not divide into --tensor-parallel {} x --pipeline-parallel {}", world, tensor,
               pipeline);
  }
  return {.data = world / (tensor * pipeline), .tensor = tensor, .pipeline = pipeline};
}

Coordinates coordinates(const Layout& layout, int rank) {
  return {.data = rank / layout.tensor % layout.data,
          .tensor = rank % layout.tensor,
          .pipeline = rank / (layout.tensor * layout.data)};
}

int rank_of(const Layout& layout, const Coordinates& at) {
  return (at.pipeline * layout.data + at.data) * layout.tensor + at.tensor;
}

Groups split_groups(comm::Context& context, const Layout& layout) {
  if (layout.world() != context.world()) {
    fail("internal: a layout of {} ranks for a job of {}", layout.world(), context.world());
  }
  Groups groups;
  if (!context.uses_mpi()) return groups;
  const Coordinates me = coordinates(layout, context.rank());
  // Ranks that share every coordinate but one form that coordinate's group; `color` numbers such sets.
  auto split = [&](int color, int index, const char* what) {
    Group g;
    comm::check_mpi(MPI_Comm_split(context.comm(), color, index, &g.comm), what);
    context.adopt_comm(g.comm);
    MPI_Comm_rank(g.comm, &g.rank);
    MPI_Comm_size(g.comm, &g.size);
    return g;
  };
  groups.data = split(me.pipeline * layout.tensor + me.tensor, me.data, "data-parallel group split");
  groups.tensor = split(me.pipeline * layout.data + me.data, me.tensor, "tensor-parallel group split");
  groups.pipeline = split(me.data * layout.tensor + me.tensor, me.pipeline, "pipeline group split");
  return groups;
}

}  // namespace triad::parallel
