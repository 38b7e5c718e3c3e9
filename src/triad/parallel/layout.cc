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

std::vector<int> stage_ranks(const Layout& layout, int stage) {
  std::vector<int> ranks;
  for (int d = 0; d < layout.data; ++d) {
    for (int t = 0; t < layout.tensor; ++t)
      ranks.push_back(rank_of(layout, {.data = d, .tensor = t, .pipeline = stage}));
  }
  return ranks;
}

Groups split_groups(comm::Context& context, const Layout& layout) {
  if (layout.world() != context.world()) {
    fail("internal: a layout of {} ranks for a job of {}", layout.world(), context.world());
  }
  const Coordinates me = coordinates(layout, context.rank());
  // Ranks that share every coordinate but one form that coordinate's group; the color numbers such sets.
  Groups g;
  g.data = context.split(me.pipeline * layout.tensor + me.tensor, me.data, "data-parallel group split");
  g.tensor = context.split(me.pipeline * layout.data + me.data, me.tensor, "tensor-parallel group split");
  g.pipeline = context.split(me.data * layout.tensor + me.tensor, me.pipeline, "pipeline group split");
  g.model = context.split(me.data, me.pipeline * layout.tensor + me.tensor, "model-parallel group split");
  const bool end_stage = me.pipeline == 0 || me.pipeline == layout.pipeline - 1;
  g.tied = g.pipeline->split(layout.pipeline > 1 && end_stage ? 0 : -1, me.pipeline, "tied embedding split");
  return g;
}

}  // namespace triad::parallel
