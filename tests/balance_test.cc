// --balance (parallel/balance.h): the split of a batch by speed, the online update of the shares, and,
// end to end under mpirun, that uneven shares still train the model one process trains.

#include "triad/parallel/balance.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>
#include <thread>

#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/train/stage_balance.h"

namespace triad::parallel {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using triad::testing::losses;
using triad::testing::metrics;
using triad::testing::RefusedWith;
using triad::testing::run_triad_mpi;
using triad::testing::TempDir;
using triad::testing::train_args;

TEST(SplitRows, LargestRemaindersWithTiesToTheLowerRank) {
  EXPECT_THAT(split_rows(16, {1, 1, 1, 1}, 1), ElementsAre(4, 4, 4, 4));
  EXPECT_THAT(split_rows(10, {1, 1, 1}, 1), ElementsAre(4, 3, 3));
  // Quotas 7.2, 2.4, 2.4: the floors leave one row, for the first of the two largest remainders.
  EXPECT_THAT(split_rows(12, {3, 1, 1}, 1), ElementsAre(7, 3, 2));
  EXPECT_THAT(split_rows(8, {3, 1}, 1), ElementsAre(6, 2));
  // A quota below the minimum is raised to it and the rest shared again: 100:1 of 8 would be 7.9 : 0.08.
  EXPECT_THAT(split_rows(8, {100, 1}, 2), ElementsAre(6, 2));
  EXPECT_THAT(split_rows(9, {100, 1, 1}, 3), ElementsAre(3, 3, 3));
  EXPECT_THAT(split_rows(7, {1000, 1}, 1), ElementsAre(6, 1));
}

// Equal weights split a divisible batch exactly equally, at every size: B x (1 / n) may round below an
// integer, and the remainder then brings it back.
TEST(SplitRows, EqualWeightsGiveEqualShares) {
  for (int n = 1; n <= 12; ++n) {
    for (int each = 1; each <= 40; ++each) {
      const std::vector<int> rows = split_rows(n * each, std::vector<double>(n, 1.0 / n), 1);
      EXPECT_EQ(rows, std::vector<int>(n, each)) << n << " ranks of " << each;
    }
  }
}

TEST(SplitRows, SumsToTheBatchKeepsTheMinimumAndFollowsTheWeights) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> weight(0.05, 5.0);
  for (int trial = 0; trial < 2000; ++trial) {
    const int n = 1 + static_cast<int>(random() % 8), min_rows = 1 + static_cast<int>(random() % 3);
    const int batch = n * min_rows + static_cast<int>(random() % 60);
    std::vector<double> w(n);
    for (double& x : w) x = weight(random);
    const std::vector<int> rows = split_rows(batch, w, min_rows);
    ASSERT_EQ(std::accumulate(rows.begin(), rows.end(), 0), batch);
    EXPECT_EQ(split_rows(batch, w, min_rows), rows) << "deterministic";
    const double total = std::accumulate(w.begin(), w.end(), 0.0);
    bool any_below = false;
    for (int r = 0; r < n; ++r) any_below |= batch * w[r] / total < min_rows;
    for (int r = 0; r < n; ++r) {
      const double quota = batch * w[r] / total;
      EXPECT_GE(rows[r], min_rows);
      // Within a row of the proportional quota; a rank below the minimum gets the minimum, and then the
      // others share less than their quotas.
      EXPECT_LT(rows[r], std::max(quota, 1.0 * min_rows) + 1) << "trial " << trial << " rank " << r;
      if (!any_below) {
        EXPECT_GT(rows[r], quota - 1) << "trial " << trial << " rank " << r;
      }
      if (quota < min_rows) {
        EXPECT_EQ(rows[r], min_rows);
      }
      for (int s = 0; s < n; ++s) {
        if (w[r] > w[s]) {
          EXPECT_GE(rows[r], rows[s]) << "a faster rank never gets fewer rows";
        }
      }
    }
  }
}

TEST(SplitRows, RefusesTooSmallABatch) {
  EXPECT_ANY_THROW(split_rows(5, {1, 1, 1}, 2));
  EXPECT_ANY_THROW(split_rows(4, {1, 0}, 1));
}

TEST(OnlineBalance, TheGainIsTheSigmoidOfTheImbalanceMappedOntoZeroToOne) {
  EXPECT_EQ(balance_gain(0, 8), 0);
  for (double d : {0.01, 0.1, 0.5, 2.0}) {
    EXPECT_NEAR(balance_gain(d, 8), 2 / (1 + std::exp(-8 * d)) - 1, 1e-15);
    EXPECT_NEAR(balance_gain(d, 8), std::tanh(4 * d), 1e-15);
  }
  EXPECT_LT(balance_gain(0.01, 8), 0.05) << "timing noise barely moves the split";
  EXPECT_GT(balance_gain(1.0, 8), 0.99) << "a rank 2x off moves it at once";
  EXPECT_LT(balance_gain(0.1, 4), balance_gain(0.1, 8)) << "gamma sets the sensitivity";
  // Shares 1/2, 1/2 against a target of 3/4, 1/4: the first rank runs twice as long as balanced.
  EXPECT_DOUBLE_EQ(imbalance({0.5, 0.5}, {0.75, 0.25}), 1.0);
  EXPECT_EQ(imbalance({0.2, 0.8}, {0.2, 0.8}), 0);
}

// From equal shares (far: 5x too many rows for the last rank, one step nearly closes it) and from near
// (2 % off, where the gain is small and the gap closes over tens of steps).
TEST(OnlineBalance, SharesConvergeToAFixedTargetAndStaySummingToOne) {
  const std::vector<double> target = {0.5, 0.3, 0.15, 0.05};
  for (const std::vector<double>& start :
       {std::vector<double>(4, 0.25), std::vector<double>{0.51, 0.3, 0.14, 0.05}}) {
    std::vector<double> shares = start;
    double gap = imbalance(shares, target);
    for (int step = 0; step < 200; ++step) {
      shares = smooth_shares(shares, target, 8);
      EXPECT_NEAR(std::accumulate(shares.begin(), shares.end(), 0.0), 1.0, 1e-12);
      const double next = imbalance(shares, target);
      // Each share's ratio to its target moves (1 - gain) of the way to 1, so the imbalance does too.
      EXPECT_NEAR(next, (1 - balance_gain(gap, 8)) * gap, 1e-12) << "step " << step;
      EXPECT_LE(next, gap + 1e-12) << "step " << step;
      gap = next;
    }
    EXPECT_LT(gap, 2e-3) << "harmonic near the target: about 1 / (gamma / 2 x steps)";
    for (int r = 0; r < 4; ++r) EXPECT_NEAR(shares[r], target[r], 1e-3);
  }
}

// Measured speeds that wobble by ±3 % around a fixed split move the shares by much less than that; a
// rank that becomes 3x slower is followed within a few steps.
TEST(OnlineBalance, SmoothsNoiseAndFollowsAStepChange) {
  std::vector<double> shares = {0.5, 0.5};
  for (int step = 0; step < 50; ++step) {
    const double wobble = step % 2 ? 0.03 : -0.03;
    shares = smooth_shares(shares, {0.5 + 0.5 * wobble, 0.5 - 0.5 * wobble}, 8);
    EXPECT_NEAR(shares[0], 0.5, 0.005) << "step " << step;
  }
  for (int step = 0; step < 4; ++step) shares = smooth_shares(shares, {0.75, 0.25}, 8);
  EXPECT_NEAR(shares[0], 0.75, 0.02);
}

// A simulated job: rank r takes rows / speed_r seconds. Both modes end at the rows in proportion to the
// speeds; static keeps the split it chose after the warm-up and kStaticSteps steps, online moves with a
// change.
TEST(RowBalancer, RowsFollowTheSpeedsInBothModes) {
  auto seconds = [](const std::vector<int>& rows, const std::vector<double>& speed) {
    std::vector<double> out;
    for (size_t r = 0; r < rows.size(); ++r) out.push_back(rows[r] / speed[r]);
    return out;
  };
  const std::vector<double> speed = {300, 100, 200};
  RowBalancer fixed(BalanceMode::kStatic, 24, 3, 2, 8), online(BalanceMode::kOnline, 24, 3, 2, 8);
  for (int step = 1; step <= RowBalancer::kWarmupSteps + RowBalancer::kStaticSteps; ++step) {
    EXPECT_THAT(fixed.rows(), ElementsAre(8, 8, 8)) << "step " << step;
    fixed.observe(seconds(fixed.rows(), speed));
  }
  EXPECT_THAT(fixed.rows(), ElementsAre(12, 4, 8));
  EXPECT_EQ(fixed.offset(2), 16);
  for (int step = 0; step < 10; ++step) online.observe(seconds(online.rows(), speed));
  EXPECT_THAT(online.rows(), ElementsAre(12, 4, 8));
  EXPECT_NEAR(online.speeds()[1], 100, 1e-9);
  const std::vector<double> changed = {100, 100, 200};
  for (int step = 0; step < 10; ++step) {
    fixed.observe(seconds(fixed.rows(), changed));
    online.observe(seconds(online.rows(), changed));
  }
  EXPECT_THAT(fixed.rows(), ElementsAre(12, 4, 8));
  EXPECT_THAT(online.rows(), ElementsAre(6, 6, 12));
}

// The warm-up step, and the first step at new rows, fault in new buffers: their times leave the split alone.
TEST(RowBalancer, TheWarmUpStepAndTheFirstAtNewRowsLeaveTheSplitAlone) {
  RowBalancer online(BalanceMode::kOnline, 8, 2, 1, 8);
  online.observe({0.1, 0.01});
  EXPECT_THAT(online.rows(), ElementsAre(4, 4));
  EXPECT_NEAR(online.speeds()[0], 40, 1e-9) << "measured all the same";
  online.observe({0.1, 0.01});
  EXPECT_THAT(online.rows(), ElementsAre(1, 7));
  online.observe({1, 0.001});
  EXPECT_THAT(online.rows(), ElementsAre(1, 7));
  EXPECT_NEAR(online.speeds()[1], 7000, 1e-6);
}

// Speeds of 10.4 : 9.6 put the proportional split of 20 rows at 10.4 : 9.6, so noise would flip the
// rounding between 10 : 10 and 11 : 9; the first is as fast (the step takes its slower rank's time) and
// the split stays.
TEST(RowBalancer, KeepsTheSplitUnlessANewOneIsFaster) {
  RowBalancer online(BalanceMode::kOnline, 20, 2, 1, 8);
  for (int step = 0; step < 30; ++step) {
    const double wobble = step % 2 ? 0.3 : -0.3;
    online.observe({online.rows()[0] / (10.4 + wobble), online.rows()[1] / (9.6 - wobble)});
    EXPECT_THAT(online.rows(), ElementsAre(10, 10)) << "step " << step;
  }
  for (int step = 0; step < 3; ++step) online.observe({online.rows()[0] / 13.0, online.rows()[1] / 7.0});
  EXPECT_THAT(online.rows(), ElementsAre(13, 7));
}

// End to end: rank 1 made to look 4x slower (TRIAD_TEST_SLOW_RANK: a model machine's seconds in place of the
// measured ones), so the split turns uneven the same way on any machine; the losses stay the 1-process run's.
class SlowRank {
 public:
  explicit SlowRank(const char* spec) { setenv("TRIAD_TEST_SLOW_RANK", spec, 1); }
  ~SlowRank() { unsetenv("TRIAD_TEST_SLOW_RANK"); }
};

TEST(Balance, UnevenSharesTrainWhatOneProcessTrains) {
  TempDir dir;
  const std::string steps = "--steps 10 --batch 8 --eval-every 0 --ckpt-every 0 ";
  ASSERT_EQ(triad::testing::run_triad(train_args(dir / "one", steps)).exit_code, 0);
  SlowRank slow("1:4");
  for (const std::string variant : {"--balance online", "--balance static", "--balance online --grad-accum 2",
                                    "--balance online --zero 1"}) {
    SCOPED_TRACE(variant);
    const std::string run = dir / "two";
    auto r = run_triad_mpi(2, train_args(run, steps + "--threads 1 --force " + variant));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
    const auto records = metrics(run);
    int uneven = 0;
    for (const auto& m : records) {
      const std::vector<int> rows = m.at("balance_rows");
      ASSERT_EQ(rows.size(), 2u);
      EXPECT_EQ(rows[0] + rows[1], 8);
      EXPECT_GE(rows[1], variant.find("grad-accum") == std::string::npos ? 1 : 2);
      EXPECT_EQ(m.at("balance_speed").size(), 2u);
      uneven += rows[0] > rows[1];
    }
    EXPECT_THAT(records.front()["balance_rows"], ElementsAre(4, 4)) << "equal shares until measured";
    EXPECT_GE(uneven, 5) << "rank 0 took more rows once rank 1 looked slower";
    // Speeds 4 : 1 split 8 rows 6.4 : 1.6, rounded by the largest remainder.
    EXPECT_THAT(records.back()["balance_rows"], ElementsAre(6, 2));
  }
}

// Under tensor parallelism both ranks of a model copy train the same rows: the split comes from the
// seconds of one of them, so every rank computes the same one (a difference would stall a collective).
TEST(Balance, TensorParallelRanksShareTheirDataRanksRows) {
  TempDir dir;
  const std::string steps = "--steps 8 --batch 8 --eval-every 0 --ckpt-every 0 --comm-timeout 60 ";
  ASSERT_EQ(triad::testing::run_triad(train_args(dir / "one", steps)).exit_code, 0);
  SlowRank slow("1:4");
  const std::string run = dir / "dp2tp2";
  auto r = run_triad_mpi(4, train_args(run, steps + "--threads 1 --tensor-parallel 2 --balance online"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
  EXPECT_GT(metrics(run).back()["balance_rows"][0].get<int>(), 4);
}

// The split is not in the checkpoint: a run resumes at another --balance (or none) and trains on.
TEST(Balance, AResumedRunMeasuresAgain) {
  TempDir dir;
  const std::string steps = "--steps 10 --batch 8 --eval-every 0 --ckpt-every 5 ";
  ASSERT_EQ(triad::testing::run_triad(train_args(dir / "one", steps)).exit_code, 0);
  SlowRank slow("1:4");
  const std::string run = dir / "two";
  auto r = run_triad_mpi(2, train_args(run, steps + "--threads 1 --balance online"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::remove_all(run + "/checkpoints/step_000010");
  r = run_triad_mpi(2, "train -q --resume " + run + " --threads 1 --balance static");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
  EXPECT_THAT(metrics(run)[5]["balance_rows"], ElementsAre(4, 4)) << "the first step after the resume";
}

// Pipeline stages: rank 1 looks 4x slower, so the second stage (which also runs the LM head) gets one block
// of four; the split is recorded as the run's --pipeline-split, so a resume keeps it even when the speeds
// have changed, and the losses stay the 1-process run's.
TEST(Balance, PipelineStagesGetBlocksByMeasuredSpeed) {
  TempDir dir;
  const std::string steps = "--steps 6 --batch 8 --layers 4 --eval-every 0 --ckpt-every 3 --grad-accum 2 ";
  ASSERT_EQ(triad::testing::run_triad(train_args(dir / "one", steps)).exit_code, 0);
  const std::string run = dir / "pp";
  {
    SlowRank slow("1:4");
    auto r = run_triad_mpi(2, train_args(run, steps + "--threads 1 --pipeline-parallel 2 --balance static"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(read_json_file(run + "/run.json")["options"]["pipeline_split"], "3,1");
  fs::remove_all(run + "/checkpoints/step_000006");
  auto r = run_triad_mpi(2, "train -q --resume " + run + " --threads 1");  // both ranks equally fast now
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_json_file(run + "/checkpoints/step_000006/manifest.json")["options"]["pipeline_split"],
            "3,1");
  testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
}

// One step on a model machine: `blocks` (the head counted on the last stage) at `speed` blocks per second
// each; the step takes as long as the slowest stage, unless `step` says otherwise.
std::vector<int> run_step(StageBalancer& stages, const std::vector<int>& blocks,
                          const std::vector<double>& speed, double head = 0, double step = 0) {
  std::vector<double> seconds;
  for (size_t s = 0; s < blocks.size(); ++s) seconds.push_back(stage_work(blocks, s, head) / speed[s]);
  return stages.observe(seconds, step > 0 ? step : *std::max_element(seconds.begin(), seconds.end()));
}

TEST(StageBalancer, MovesBlocksOffASlowStageAfterMeasuring) {
  StageBalancer stages({3, 3}, 0);
  const std::vector<double> speed = {1, 3};  // stage 0 three times slower per block
  EXPECT_TRUE(run_step(stages, {3, 3}, {100, 100}).empty()) << "the first step is no speed";
  EXPECT_TRUE(run_step(stages, {3, 3}, speed).empty());
  EXPECT_TRUE(run_step(stages, {3, 3}, speed).empty());
  // max(1/1, 5/3) = 1.67 s against max(3/1, 3/3) = 3 s.
  EXPECT_THAT(run_step(stages, {3, 3}, speed), ElementsAre(1, 5));
  EXPECT_NEAR(stages.speeds()[0], 1, 1e-12);
  EXPECT_NEAR(stages.speeds()[1], 3, 1e-12);
  // After the move: a warm-up step and fresh measurements at the new split, which is already the best.
  for (int step = 0; step < 10; ++step) EXPECT_TRUE(run_step(stages, {1, 5}, speed).empty());
}

TEST(StageBalancer, StaysUnlessTheGainIsWorthAMove) {
  // 9 : 11 blocks at speeds 1 : 1.2 would take 9.17 against 10: 8 % faster, below kMinGain.
  StageBalancer close({10, 10}, 0);
  for (int step = 0; step < 10; ++step) EXPECT_TRUE(run_step(close, {10, 10}, {1, 1.2}).empty());
  // At 1 : 1.5, 8 : 12 take 8 against 10: 20 % faster.
  StageBalancer far({10, 10}, 0);
  std::vector<int> moved;
  for (int step = 0; step < 4 && moved.empty(); ++step) moved = run_step(far, {10, 10}, {1, 1.5});
  EXPECT_THAT(moved, ElementsAre(8, 12));
}

TEST(StageBalancer, OneDisturbedStepOfThreeMovesNothing) {
  StageBalancer stages({4, 4}, 0);
  run_step(stages, {4, 4}, {1, 1});
  EXPECT_TRUE(run_step(stages, {4, 4}, {1, 1}).empty());
  EXPECT_TRUE(run_step(stages, {4, 4}, {0.25, 1}).empty());  // a neighbour's burst on stage 0
  EXPECT_TRUE(run_step(stages, {4, 4}, {1, 1}).empty());
  EXPECT_NEAR(stages.speeds()[0], 1, 1e-12);
}

TEST(StageBalancer, CountsTheHeadOnTheLastStage) {
  // Equal speeds, a head worth two blocks: 2 + (2 + 2) is slower than 3 + (1 + 2).
  StageBalancer stages({2, 2}, 2);
  std::vector<int> moved;
  for (int step = 0; step < 4 && moved.empty(); ++step) moved = run_step(stages, {2, 2}, {1, 1}, 2);
  EXPECT_THAT(moved, ElementsAre(3, 1));
  EXPECT_NEAR(stages.speeds()[1], 1, 1e-12) << "the last stage's speed counts its head";
}

// Stages that share a core: a stage's speed depends on the split. At 2,2 stage 0 looks slow, but at 1,3 its
// neighbour slows (3 s a step against 2); the measured steps bring the split back and keep it there.
TEST(StageBalancer, ASplitMeasuredSlowerIsNotTakenAgain) {
  StageBalancer stages({2, 2}, 0);
  std::vector<int> moved;
  for (int step = 0; step < 4 && moved.empty(); ++step) moved = run_step(stages, {2, 2}, {1, 3});
  ASSERT_THAT(moved, ElementsAre(1, 3)) << "2 s against a predicted 1 s";
  moved.clear();
  for (int step = 0; step < 4 && moved.empty(); ++step) moved = run_step(stages, {1, 3}, {1, 1});
  ASSERT_THAT(moved, ElementsAre(2, 2)) << "measured 2 s there, 3 s here";
  // Back at 2,2 the speeds propose 1,3 again, measured 3 s against 2 s here: stay.
  for (int step = 0; step < 50; ++step) EXPECT_TRUE(run_step(stages, {2, 2}, {1, 3}).empty()) << step;
  // The memory fades: after kRememberSteps the proposal is tried afresh.
  moved.clear();
  for (int step = 0; step < StageBalancer::kRememberSteps && moved.empty(); ++step)
    moved = run_step(stages, {2, 2}, {1, 3});
  EXPECT_THAT(moved, ElementsAre(1, 3));
}

// Each block's stage under a split, for counting the blocks that move between two.
std::vector<int> stage_of_each_block(const std::vector<int>& split) {
  std::vector<int> stage;
  for (size_t s = 0; s < split.size(); ++s) stage.insert(stage.end(), split[s], static_cast<int>(s));
  return stage;
}

int blocks_that_move(const std::vector<int>& from, const std::vector<int>& to) {
  const std::vector<int> a = stage_of_each_block(from), b = stage_of_each_block(to);
  int moved = 0;
  for (size_t i = 0; i < a.size(); ++i) moved += a[i] != b[i];
  return moved;
}

TEST(StageBalancer, BlocksThatMoveBetweenTwoSplits) {
  for (const auto& [from, to] :
       std::vector<std::pair<std::vector<int>, std::vector<int>>>{{{3, 1, 2}, {4, 1, 1}},
                                                                  {{3, 1, 2}, {3, 2, 1}},
                                                                  {{3, 1, 2}, {3, 1, 2}},
                                                                  {{1, 5}, {5, 1}},
                                                                  {{2, 2, 2, 2}, {1, 3, 3, 1}},
                                                                  {{1, 1, 6}, {6, 1, 1}}})
    EXPECT_EQ(blocks_moved(from, to), blocks_that_move(from, to));
}

// Three stages of one rank each at 8 micro-batches, ranks 0 and 1 on one CPU, rank 2 on its own.
StageSharing first_two_of_three_share_a_cpu() {
  return {.micro_batches = 8,
          .stage_ranks = {{0}, {1}, {2}},
          .shares = {{.host = "h", .ranks = {0, 1}, .cpus = 1}}};
}

// Stages 0 and 1 take turns on one CPU, stage 2 has its own; every block costs 1 s a micro-batch at a
// core's speed and the LM head two blocks' worth. The stages' busy times (here simulated) make the shared
// stages look slower than they are whenever both work: taken at those speeds, a split would move to 3,2,1,
// which is slower in truth. Fitted through the simulation, the balancer recovers the cost at a core's
// speed, stays at the fastest split, and from another start moves to the split that moves the fewest
// blocks among those within kSimulationTolerance of the fastest of all ten.
TEST(StageBalancer, StagesThatShareACoreAreSimulatedNotTakenAtTheirMeasuredSpeed) {
  const StageSharing sharing = first_two_of_three_share_a_cpu();
  const std::vector<double> cost = {1, 1, 1};
  const double head = 2;
  std::vector<std::pair<std::vector<int>, double>> all;
  for (int a = 1; a <= 4; ++a) {
    for (int b = 1; a + b <= 5; ++b) {
      const std::vector<int> split = {a, b, 6 - a - b};
      all.emplace_back(split, simulate_split(sharing, split, cost, head));
    }
  }
  const auto [fastest, fastest_step] = *std::min_element(
      all.begin(), all.end(), [](const auto& x, const auto& y) { return x.second < y.second; });
  ASSERT_EQ(fastest, std::vector<int>({3, 1, 2}));
  // (The speeds as measured at the fastest split propose a split that is slower in truth.)
  std::vector<double> busy;
  simulate_split(sharing, fastest, cost, head, &busy);
  std::vector<double> measured_speed;  // blocks per second of busy time
  for (int s = 0; s < 3; ++s) measured_speed.push_back(stage_work(fastest, s, head) / busy[s]);
  const std::vector<int> first = balanced_split(6, measured_speed, head);
  const std::vector<int> by_speeds = {first[1], first[2] - first[1], 6 - first[2]};
  ASSERT_GT(simulate_split(sharing, by_speeds, cost, head), fastest_step * 1.1)
      << "no test of the simulation";

  // At the fastest split: stays.
  StageBalancer there(fastest, head, sharing);
  for (int step = 0; step < 10; ++step) EXPECT_TRUE(there.observe(busy, fastest_step).empty()) << step;
  ASSERT_EQ(there.block_seconds().size(), 3u);
  for (int s = 0; s < 3; ++s) EXPECT_NEAR(there.block_seconds()[s], cost[s], 1e-6) << "stage " << s;
  // From 2,1,3 (which the fastest is more than kMinGain faster than): to the tie that moves the fewest.
  const std::vector<int> start = {2, 1, 3};
  std::vector<int> expected;
  double expected_step = 0;
  for (const auto& [split, t] : all) {
    if (t > fastest_step * (1 + kSimulationTolerance)) continue;
    const int moved = blocks_that_move(start, split);
    if (expected.empty() || moved < blocks_that_move(start, expected) ||
        (moved == blocks_that_move(start, expected) && t < expected_step))
      expected = split, expected_step = t;
  }
  const double step = simulate_split(sharing, start, cost, head, &busy);
  ASSERT_LT(expected_step, step * (1 - StageBalancer::kMinGain));
  StageBalancer elsewhere(start, head, sharing);
  std::vector<int> moved;
  for (int i = 0; i < 4 && moved.empty(); ++i) moved = elsewhere.observe(busy, step);
  EXPECT_EQ(moved, expected);
}

// Two splits the simulation cannot separate (within kSimulationTolerance): the one that moves fewer blocks
// is proposed. A busy neighbour halves the lone stage's speed: from 3,1,2, both 4,1,1 and 3,2,1 leave five
// blocks on the shared core, within 1 % of each other; 3,2,1 moves one block, 4,1,1 two.
TEST(StageBalancer, OfSplitsTheSimulationCannotTellApartTheOneMovingFewestBlocks) {
  const StageSharing sharing = first_two_of_three_share_a_cpu();
  const std::vector<double> cost = {1, 1, 2};
  const double head = 2.5;
  const double a = simulate_split(sharing, {4, 1, 1}, cost, head),
               b = simulate_split(sharing, {3, 2, 1}, cost, head);
  ASSERT_LT(std::abs(a / b - 1), kSimulationTolerance) << a << " against " << b;
  EXPECT_EQ(fastest_simulated_split(sharing, {3, 1, 2}, cost, head), std::vector<int>({3, 2, 1}));
}

// End to end: rank 0 looks 4x slower, so blocks leave the first stage once three steps have measured it;
// they move through a checkpoint of that step, which records the new split, and the losses stay the
// 1-process run's across the move.
TEST(Balance, OnlinePipelineStagesMoveBlocksMidRun) {
  TempDir dir;
  const std::string steps = "--steps 8 --batch 8 --layers 4 --eval-every 0 --ckpt-every 0 --grad-accum 2 ";
  ASSERT_EQ(triad::testing::run_triad(train_args(dir / "one", steps)).exit_code, 0);
  const std::string run = dir / "pp";
  SlowRank slow("0:4");
  auto r = run_triad_mpi(
      2, train_args(run, steps + "--threads 1 --pipeline-parallel 2 --pipeline-split 2,2 --balance online"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
  const auto records = metrics(run);
  ASSERT_EQ(records.size(), 8u);
  for (int step = 0; step < 4; ++step) EXPECT_THAT(records[step]["pipeline_blocks"], ElementsAre(2, 2));
  for (int step = 4; step < 8; ++step) EXPECT_THAT(records[step]["pipeline_blocks"], ElementsAre(1, 3));
  for (int step = 0; step < 8; ++step)
    EXPECT_EQ(records[step].contains("pipeline_move_ms"), step == 4)
        << "the move's time on the step after it";
  EXPECT_GT(records[4].value("pipeline_move_ms", 0.0), 0);
  EXPECT_EQ(read_json_file(run + "/checkpoints/step_000004/manifest.json")["options"]["pipeline_split"],
            "1,3");
  EXPECT_EQ(read_json_file(run + "/checkpoints/step_000008/manifest.json")["options"]["pipeline_split"],
            "1,3");
}

// Under data parallelism × pipelines every copy of a stage decides alike (the times are max-reduced over
// the world first), and ZeRO-1's optimizer shards reload at the new split.
TEST(Balance, OnlineStagesMoveUnderDataParallelismAndZero1) {
  TempDir dir;
  const std::string steps = "--steps 8 --batch 8 --layers 4 --eval-every 0 --ckpt-every 0 --grad-accum 2 ";
  ASSERT_EQ(triad::testing::run_triad(train_args(dir / "one", steps)).exit_code, 0);
  const std::string run = dir / "dp2pp2";
  SlowRank slow("0:4");
  auto r = run_triad_mpi(4, train_args(run, steps + "--threads 1 --pipeline-parallel 2 --pipeline-split 2,2 "
                                                    "--balance online --zero 1 --comm-timeout 60"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
  EXPECT_THAT(metrics(run).back()["pipeline_blocks"], ElementsAre(1, 3));
  // The move was a resume from step 4's checkpoint in all but name: resuming a copy from it gives the same
  // steps bit for bit.
  const std::string again = dir / "again";
  fs::copy(run, again, fs::copy_options::recursive);
  fs::remove_all(again + "/checkpoints/step_000008");
  r = run_triad_mpi(4, "train -q --resume " + again + " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(again), losses(run));
}

// Three stages on fewer CPUs take turns: the balancer knows it (from where the ranks run), fits each stage's
// block at a core's speed through the simulated schedule and records it, and whatever it moves, the run
// stays the 1-process run.
TEST(Balance, OnlineStagesThatShareCpusAreFittedAtACoresSpeed) {
  if (std::thread::hardware_concurrency() >= 3) GTEST_SKIP() << "needs fewer than 3 CPUs for 3 ranks";
  TempDir dir;
  const std::string steps = "--steps 6 --batch 8 --layers 3 --eval-every 0 --ckpt-every 0 --grad-accum 4 ";
  ASSERT_EQ(triad::testing::run_triad(train_args(dir / "one", steps)).exit_code, 0);
  const std::string run = dir / "pp";
  auto r = run_triad_mpi(3, train_args(run, steps + "--threads 1 --pipeline-parallel 3 --balance online"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
  const auto records = metrics(run);
  ASSERT_EQ(records.size(), 6u);
  // A warm-up step, then three measured: the first estimate after step 4.
  EXPECT_FALSE(records[2].contains("pipeline_block_ms"));
  const nlohmann::json& fitted = records[3]["pipeline_block_ms"];
  ASSERT_EQ(fitted.size(), 3u) << records[3].dump();
  for (double ms : fitted) {
    EXPECT_GT(ms, 0);
    EXPECT_LT(ms, 1e4);
  }
}

// The measurement itself (the end-to-end test above replaces it with a model machine's times).
TEST(Balance, OneBlockIsTimedOnTheMicroBatch) {
  TrainOptions o;
  o.model.layers = 4;
  o.model.d_model = 32;
  o.model.heads = 2;
  o.model.seq_len = 16;
  o.model.vocab = 64;
  o.batch = 8;
  const double seconds = time_one_block(o, 1);
  EXPECT_GT(seconds, 0);
  EXPECT_LT(seconds, 10);
}

TEST(Balance, RefusesWhatItCannotSplit) {
  TempDir dir;
  EXPECT_THAT(run_triad_mpi(2, train_args(dir / "dp",
                                          "--steps 2 --threads 1 --balance online --dp-noise 1 "
                                          "--dp-clip 1 --dp-delta 1e-5")),
              RefusedWith("--balance online does not apply under DP-SGD (--dp-noise)"));
  EXPECT_THAT(triad::testing::run_triad(train_args(dir / "gamma", "--steps 2 --balance-gamma 0")),
              RefusedWith("--balance-gamma"));
  EXPECT_FALSE(fs::exists(dir / "dp"));
  EXPECT_FALSE(fs::exists(dir / "gamma"));
}

}  // namespace
}  // namespace triad::parallel
