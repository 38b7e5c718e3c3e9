// The model's dataflow table (model/dataflow.h) against the rules that were written out by hand before
// it: what each unit is computed from, when the forward may release it, what the backward reads, and the
// size of each unit.

#include "triad/model/dataflow.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace triad {
namespace {

TEST(Dataflow, BlockUnitsRunInForwardOrderFromEarlierUnitsOnly) {
  std::vector<Act> seen;
  for (Act kind : block_units()) {
    for (const Unit& input : inputs_of(3, kind)) {
      if (input == block_input(3)) continue;
      EXPECT_EQ(input.first, 3) << act_name(kind);
      EXPECT_NE(std::find(seen.begin(), seen.end(), input.second), seen.end())
          << act_name(kind) << " reads " << act_name(input.second) << " before it is computed";
    }
    seen.push_back(kind);
  }
  EXPECT_EQ(static_cast<int>(block_units().size()), kBlockUnitCount);
  EXPECT_EQ(block_units().back(), Act::kBlockOut);
  EXPECT_EQ(inputs_of(0, Act::kLn1), (std::vector<Unit>{{-1, Act::kEmbed}}));
  EXPECT_EQ(inputs_of(2, Act::kRes2), (std::vector<Unit>{{2, Act::kAttOut}, {1, Act::kBlockOut}}));
}

// The last forward reader of each unit, as the schedule's hand-written switch had it.
TEST(Dataflow, LastForwardUsesAreTheOnesTheScheduleHadByHand) {
  const std::vector<std::pair<Act, Act>> last_reader = {
      {Act::kLn1, Act::kQkv},     {Act::kQkv, Act::kAttOut},    {Act::kAttProbs, Act::kAttOut},
      {Act::kAttOut, Act::kRes2}, {Act::kRes2, Act::kBlockOut}, {Act::kLn2, Act::kFc},
      {Act::kFc, Act::kGelu},     {Act::kGelu, Act::kBlockOut}};
  for (auto [unit, reader] : last_reader) {
    for (Act kind : block_units()) {
      EXPECT_EQ(is_last_forward_use({2, unit}, 2, kind), kind == reader)
          << act_name(unit) << " read by " << act_name(kind);
      EXPECT_FALSE(is_last_forward_use({2, unit}, 3, kind));
    }
  }
  // A block's output: last read by the next block's residual, never inside its own block.
  for (Act kind : block_units()) {
    EXPECT_EQ(is_last_forward_use({2, Act::kBlockOut}, 3, kind), kind == Act::kRes2) << act_name(kind);
    EXPECT_FALSE(is_last_forward_use({2, Act::kBlockOut}, 2, kind));
  }
}

TEST(Dataflow, TheBackwardReadsEveryBlockUnitButItsOutput) {
  std::vector<Act> expected(block_units().begin(), block_units().end() - 1);
  EXPECT_EQ(std::vector<Act>(backward_reads().begin(), backward_reads().end()), expected);
}

TEST(Dataflow, UnitSizesAreTheKernelsBuffers) {
  const GptConfig c{.layers = 2, .d_model = 12, .heads = 3, .seq_len = 7, .vocab = 50};
  const size_t B = 2, T = 5, BT = B * T, BTC = BT * 12;
  EXPECT_EQ(unit_elements(c, B, T, Act::kLn1), BTC + 2 * BT);
  EXPECT_EQ(unit_elements(c, B, T, Act::kQkv), 3 * BTC);
  EXPECT_EQ(unit_elements(c, B, T, Act::kAttProbs), B * 3 * T * T);
  EXPECT_EQ(unit_elements(c, B, T, Act::kFc), 4 * BTC);
  EXPECT_EQ(unit_elements(c, B, T, Act::kLogits), BT * 50);
  EXPECT_EQ(unit_elements(c, B, T, Act::kLogitsSlice), BT * 50);  // one slice covers a small vocabulary
  EXPECT_EQ(unit_elements(c, B, T, Act::kLoss), 2 * BT);
  EXPECT_EQ(unit_elements(c, B, T, Act::kScratch), 10 * BTC);
  for (size_t k = 0; k < static_cast<size_t>(Act::kCount); ++k) {
    EXPECT_EQ(unit_info(static_cast<Act>(k)).kind, static_cast<Act>(k));
  }
  EXPECT_STREQ(act_name(Act::kAttProbs), "att_probs");
}

}  // namespace
}  // namespace triad
