// The rank layout's groups across real processes (mpirun -np 4): each group holds the ranks that differ
// from this one in its coordinate only, in coordinate order.

#include <gtest/gtest.h>

#include "triad/parallel/layout.h"

namespace triad::parallel {
namespace {

comm::Context* context = nullptr;

// The world ranks of `group`, in group order.
std::vector<int> members(const comm::Context& group) {
  std::vector<int> ranks(static_cast<size_t>(group.world()));
  int me = context->rank();
  MPI_Allgather(&me, 1, MPI_INT, ranks.data(), 1, MPI_INT, group.comm());
  return ranks;
}

void expect_groups(const Layout& layout) {
  const Groups groups = split_groups(*context, layout);
  const Coordinates me = coordinates(layout, context->rank());
  auto expected = [&](auto vary, int size) {
    std::vector<int> ranks;
    for (int i = 0; i < size; ++i) {
      Coordinates at = me;
      vary(at, i);
      ranks.push_back(rank_of(layout, at));
    }
    return ranks;
  };
  EXPECT_EQ(members(*groups.data), expected([](Coordinates& c, int i) { c.data = i; }, layout.data));
  EXPECT_EQ(members(*groups.tensor), expected([](Coordinates& c, int i) { c.tensor = i; }, layout.tensor));
  EXPECT_EQ(members(*groups.pipeline),
            expected([](Coordinates& c, int i) { c.pipeline = i; }, layout.pipeline));
  EXPECT_EQ(groups.tensor->rank(), me.tensor);
  EXPECT_EQ(groups.data->rank(), me.data);
  EXPECT_EQ(groups.model->world(), layout.tensor * layout.pipeline);
  const bool end_stage = me.pipeline == 0 || me.pipeline == layout.pipeline - 1;
  ASSERT_EQ(groups.tied != nullptr, layout.pipeline > 1 && end_stage);
  if (groups.tied) {
    Coordinates first = me, last = me;
    first.pipeline = 0;
    last.pipeline = layout.pipeline - 1;
    EXPECT_EQ(members(*groups.tied), (std::vector<int>{rank_of(layout, first), rank_of(layout, last)}));
  }
}

TEST(ParallelGroups, DataByTensor) {
  expect_groups(Layout::of(4, 2, 1));
}

TEST(ParallelGroups, TensorByPipeline) {
  expect_groups(Layout::of(4, 2, 2));
}

TEST(ParallelGroups, FourStages) {
  expect_groups(Layout::of(4, 1, 4));
}

TEST(ParallelGroups, DataByPipeline) {
  expect_groups(Layout::of(4, 1, 2));
}

}  // namespace
}  // namespace triad::parallel

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::unique_ptr<triad::comm::Context> context = triad::comm::Context::open({.timeout_s = 60});
  triad::parallel::context = context.get();
  if (context->rank() != 0) {
    ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, context->comm());
  context.reset();
  triad::comm::shutdown(0);
  return failed;
}
