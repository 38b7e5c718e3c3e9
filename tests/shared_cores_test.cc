// parallel/shared_cores: which probed ranks share CPUs, the step simulated with them taking turns against
// what follows from first principles (the pipeline formula with a core each, a fully busy group slowed by
// ranks / CPUs, one CPU never idle while work is ready), and the planner's step times with it. And
// parallel/contention: a node's slowdown at once from its timings, the simulation with it (a busy node
// slowed by the whole factor, a rank alone not at all, k of n working in between), the planner's at_once,
// and the model timed in this process.

#include "triad/parallel/shared_cores.h"

#include <fmt/ranges.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "triad/comm/context.h"
#include "triad/core/error.h"
#include "triad/parallel/contention.h"
#include "triad/parallel/planner.h"

namespace triad::parallel {
namespace {

comm::Topology ranks_on(const std::vector<std::vector<int>>& cpus, const std::vector<int>& nodes) {
  comm::Topology t = uniform_topology(static_cast<int>(cpus.size()), 50, CostModel{});
  for (size_t r = 0; r < cpus.size(); ++r) {
    t.ranks[r].cpus = cpus[r];
    t.ranks[r].node = nodes[r];
    t.ranks[r].host = nodes[r] == 0 ? "a" : "b";
  }
  return t;
}

TEST(SharedCores, RanksThatOutnumberTheirCpusAreNamed) {
  // Node a: three ranks whose CPUs overlap ({0, 1} twice and {1}): one group over CPUs 0 and 1. Node b:
  // a CPU each.
  comm::Topology t = ranks_on({{0, 1}, {0, 1}, {1}, {0}, {1}}, {0, 0, 0, 1, 1});
  EXPECT_EQ(shared_core_nodes(t), (std::vector<std::string>{"a: ranks 0, 1, 2 share 2 CPUs"}));
  t.ranks[4].cpus = {0};  // both of node b's ranks bound to CPU 0
  EXPECT_EQ(shared_core_nodes(t),
            (std::vector<std::string>{"a: ranks 0, 1, 2 share 2 CPUs", "b: ranks 3, 4 share 1 CPU"}));
  t.ranks[3].cpus.clear();  // not known: not named
  EXPECT_EQ(shared_core_nodes(t).size(), 1u);
  // Affinities that do not overlap are groups of their own: rank 0 alone on CPU 0, ranks 1 and 2 on CPU 1.
  t = ranks_on({{0}, {1}, {1}}, {0, 0, 0});
  const std::vector<CpuShare> shares = cpu_shares(t);
  ASSERT_EQ(shares.size(), 1u);
  EXPECT_EQ(shares[0].ranks, (std::vector<int>{1, 2}));
  EXPECT_EQ(shares[0].cpus, 1);
  t.ranks[2].sgemm_gflops = 40;  // without readings alone: the group's median, 45, × 2 ranks / 1 CPU
  comm::Topology own = at_a_core_each(t, shares);
  EXPECT_DOUBLE_EQ(own.ranks[0].sgemm_gflops, 50);
  EXPECT_DOUBLE_EQ(own.ranks[1].sgemm_gflops, 90);
  EXPECT_DOUBLE_EQ(own.ranks[2].sgemm_gflops, 90);
  for (int r = 0; r < 3; ++r) t.ranks[r].sgemm_alone_gflops = 80 + r;  // with them: their median
  own = at_a_core_each(t, shares);
  EXPECT_DOUBLE_EQ(own.ranks[0].sgemm_gflops, 50);
  EXPECT_DOUBLE_EQ(own.ranks[1].sgemm_gflops, 81.5);
  EXPECT_DOUBLE_EQ(own.ranks[2].sgemm_gflops, 81.5);
}

std::vector<SimulatedStage> equal_stages(int p, double f, double b, double tail) {
  std::vector<SimulatedStage> stages;
  for (int s = 0; s < p; ++s) stages.push_back({.forward = f, .backward = b, .tail = tail, .ranks = {s}});
  return stages;
}

TEST(SharedCores, WithACoreEachTheSimulationIsThePipelineFormula) {
  for (PipelineSchedule schedule : {PipelineSchedule::kOneFOneB, PipelineSchedule::kGPipe}) {
    for (int p : {1, 2, 4}) {
      for (int m : {1, 4, 8}) {
        const double f = 0.3, b = 0.7, tail = 0.25;
        EXPECT_NEAR(simulate_step(schedule, m, equal_stages(p, f, b, tail), {}), (m + p - 1) * (f + b) + tail,
                    1e-12)
            << schedule_name(schedule) << " p " << p << " m " << m;
      }
    }
  }
}

TEST(SharedCores, ABusyGroupRunsRanksOverCpusSlower) {
  // Four data-parallel ranks on two CPUs: always all working, each at half a core.
  std::vector<SimulatedStage> one{{.forward = 0.2, .backward = 0.4, .tail = 0.1, .ranks = {0, 1, 2, 3}}};
  const CpuShare four_on_two{.host = "a", .ranks = {0, 1, 2, 3}, .cpus = 2};
  EXPECT_NEAR(simulate_step(PipelineSchedule::kOneFOneB, 4, one, {four_on_two}), 2 * (4 * 0.6 + 0.1), 1e-12);
}

TEST(SharedCores, OneCpuIsNeverIdleWhileAStageCanWork) {
  // Every stage on one CPU: whenever a stage waits, another runs, so the step is all the work, one piece
  // after another — less than the pipeline formula's bubble at a core each would suggest twice over.
  for (PipelineSchedule schedule : {PipelineSchedule::kOneFOneB, PipelineSchedule::kGPipe}) {
    std::vector<SimulatedStage> stages = equal_stages(4, 0.1, 0.2, 0.05);
    stages[3].forward = 0.25;  // a heavier last stage (the LM head)
    const CpuShare all{.host = "a", .ranks = {0, 1, 2, 3}, .cpus = 1};
    const double work = 8 * (3 * 0.3 + 0.25 + 0.2) + 4 * 0.05;
    EXPECT_NEAR(simulate_step(schedule, 8, stages, {all}), work, 1e-12) << schedule_name(schedule);
  }
}

TEST(SharedCores, ThePlannerPricesTakingTurns) {
  PlanRequest r;
  r.model = {.layers = 4, .d_model = 32, .heads = 2, .seq_len = 16, .vocab = 400};
  r.batch = 8;
  r.ranks = 4;
  r.memory_cap = 1e12;
  const CostModel cost;
  // The probe reads 50 GFLOP/s on each of four ranks that share two CPUs: a core runs at 100.
  comm::Topology shared = uniform_topology(4, 50, cost), own = uniform_topology(4, 100, cost);
  for (int i = 0; i < 4; ++i) {
    shared.ranks[i].cpus = {0, 1};
    own.ranks[i].cpus = {i};
  }
  int checked = 0;
  for (const LayoutChoice& c : enumerate_layouts(r)) {
    const TimePrediction at_core = predict_time(r, c, own, cost), turns = predict_time(r, c, shared, cost);
    EXPECT_EQ(at_core.taking_turns, 0);
    EXPECT_NEAR(turns.step() - turns.taking_turns, at_core.step(), 1e-12 * at_core.step()) << c.name();
    if (c.layout.pipeline == 1) {  // every rank works all the step: twice as long on half the cores
      EXPECT_NEAR(turns.step(), 2 * at_core.step(), 1e-9 * at_core.step()) << c.name();
    } else {  // stages that wait lend their core: less than twice
      EXPECT_LT(turns.step(), 2 * at_core.step()) << c.name();
      EXPECT_GE(turns.step(), at_core.step()) << c.name();
    }
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

const GptConfig kModel{.layers = 4, .d_model = 32, .heads = 2, .seq_len = 16, .vocab = 400};

// `t` with kModel timed at micro-batch 2: `alone` ms on each node's first rank, `at_once[r]` ms on rank r.
comm::Topology timed(comm::Topology t, double alone, const std::vector<double>& at_once) {
  t.micro_step_of = micro_step_subject(kModel, 2);
  for (int r = 0; r < t.world; ++r) {
    t.ranks[r].micro_step_alone_ms = alone;
    t.ranks[r].micro_step_at_once_ms = at_once[r];
  }
  return t;
}

// What the planner predicts for kModel's step at micro-batch 2 on one rank of 50 GFLOP/s (ranks_on's
// speed), in ms: a topology that timed it at this scales nothing.
double predicted_micro_step_ms() {
  const PlanRequest one{.model = kModel, .batch = 2, .ranks = 1, .memory_cap = 1e12};
  const CostModel cost;
  return predict_time(one, enumerate_layouts(one)[0], uniform_topology(1, 50, cost), cost).step() * 1e3;
}

// Past kMaxSimulatedSplits the fastest split is searched by moving a block at a time between neighbours;
// on four stages of 60 blocks (32,509 splits), one of them twice as slow and the first two sharing a CPU,
// it reaches the fastest of every split (found here by visiting them all) to within kSimulationTolerance,
// which it gives up for fewer blocks moved.
TEST(SharedCores, TheFastestSplitBeyondEnumerationIsFoundByMovingBlocks) {
  const StageSharing sharing{.micro_batches = 4,
                             .stage_ranks = {{0}, {1}, {2}, {3}},
                             .shares = {{.host = "h", .ranks = {0, 1}, .cpus = 1}}};
  const std::vector<double> cost = {1, 1, 2, 1};
  const double head = 3;
  std::vector<int> fastest;
  double fastest_step = 1e300;
  for (int a = 1; a <= 57; ++a) {
    for (int b = 1; a + b <= 58; ++b) {
      for (int c = 1; a + b + c <= 59; ++c) {
        const std::vector<int> split = {a, b, c, 60 - a - b - c};
        if (const double t = simulate_split(sharing, split, cost, head); t < fastest_step)
          fastest_step = t, fastest = split;
      }
    }
  }
  const std::vector<int> found = fastest_simulated_split(sharing, {15, 15, 15, 15}, cost, head);
  EXPECT_LE(simulate_split(sharing, found, cost, head), fastest_step * (1 + kSimulationTolerance))
      << fmt::format("{} against {}", fmt::join(found, ","), fmt::join(fastest, ","));
}

TEST(Contention, ANodesSlowdownIsItsRanksMedianBeyondTheirShareOfTheCpus) {
  // Node a: ranks 0-2 on CPUs 0 and 1 (three on two: at once takes 1.5x alone without contention); node b:
  // rank 3 alone, nothing to contend with.
  const comm::Topology t =
      timed(ranks_on({{0, 1}, {0, 1}, {0, 1}, {0}}, {0, 0, 0, 1}), 100, {165, 180, 150, 101});
  std::vector<NodeContention> nodes = node_contention(t, kModel);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].host, "a");
  EXPECT_EQ(nodes[0].ranks, (std::vector<int>{0, 1, 2}));
  EXPECT_DOUBLE_EQ(nodes[0].factor, 1.1);  // the median of 165, 180 and 150 over 150
  const std::vector<std::string> lines = timing_lines(t, kModel, CostModel{});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0],
              ::testing::MatchesRegex("a: ranks 0, 1, 2: the model's step alone .*x the cost model's, "
                                      "all at once 1.10x slower"));
  EXPECT_THAT(lines[1], ::testing::MatchesRegex("b: rank 3: the model's step alone .*x the cost model's"));
  // Timed with fewer of the model's blocks (it did not fit): the same model.
  comm::Topology part = t;
  part.micro_step_of["model"]["layers"] = 2;
  EXPECT_EQ(node_contention(part, kModel).size(), 1u);
  // Another model, no timing, a rank without one: nothing priced, and why.
  EXPECT_EQ(untimed(t, kModel), "");
  GptConfig wider = kModel;
  wider.d_model = 64;
  EXPECT_TRUE(node_contention(t, wider).empty());
  EXPECT_THAT(untimed(t, wider), ::testing::HasSubstr("of another model"));
  const comm::Topology plain = ranks_on({{0}, {1}}, {0, 0});
  EXPECT_TRUE(node_contention(plain, kModel).empty());
  EXPECT_THAT(untimed(plain, kModel), ::testing::HasSubstr("no timing"));
  comm::Topology missing = t;
  missing.ranks[2].micro_step_at_once_ms = 0;
  EXPECT_TRUE(node_contention(missing, kModel).empty());
  EXPECT_THAT(untimed(missing, kModel), ::testing::HasSubstr("rank 2"));
}

TEST(Contention, TheSimulationSlowsANodeByHowManyOfItsRanksWork) {
  const double f = 0.3, b = 0.7, tail = 0.25;
  const NodeContention node{.host = "a", .ranks = {0, 1}, .factor = 1.2};
  // Data parallel: both ranks work the whole step, each 1.2x slower.
  std::vector<SimulatedStage> both{{.forward = f, .backward = b, .tail = tail, .ranks = {0, 1}}};
  EXPECT_NEAR(simulate_step(PipelineSchedule::kOneFOneB, 4, both, {}, {node}), 1.2 * (4 * (f + b) + tail),
              1e-12);
  // Two stages and one micro-batch: never both at work, never slower.
  EXPECT_NEAR(simulate_step(PipelineSchedule::kOneFOneB, 1, equal_stages(2, f, b, 0), {}, {node}),
              2 * (f + b), 1e-12);
  // Two stages of two ranks each on a node of four: one stage at a time is 2 of 4 ranks at work,
  // 1 + 0.3 x 1/3 slower; with ranks that share the CPUs too, both apply.
  std::vector<SimulatedStage> pairs{{.forward = f, .backward = b, .tail = 0, .ranks = {0, 1}},
                                    {.forward = f, .backward = b, .tail = 0, .ranks = {2, 3}}};
  const NodeContention four{.host = "a", .ranks = {0, 1, 2, 3}, .factor = 1.3};
  EXPECT_NEAR(simulate_step(PipelineSchedule::kGPipe, 1, pairs, {}, {four}), 1.1 * 2 * (f + b), 1e-12);
  const CpuShare one_cpu{.host = "a", .ranks = {0, 1, 2, 3}, .cpus = 1};
  EXPECT_NEAR(simulate_step(PipelineSchedule::kGPipe, 1, pairs, {one_cpu}, {four}), 2 * 1.1 * 2 * (f + b),
              1e-12);
  // A factor below 1 (at once measured faster than alone: noise) is priced as no slowdown.
  EXPECT_NEAR(simulate_step(PipelineSchedule::kOneFOneB, 4, both, {}, {{.ranks = {0, 1}, .factor = 0.9}}),
              4 * (f + b) + tail, 1e-12);
}

TEST(Contention, ThePlannerPricesRanksAtOnce) {
  PlanRequest r{.model = kModel, .batch = 8, .ranks = 2, .memory_cap = 1e12};
  const CostModel cost;
  const double p = predicted_micro_step_ms();
  const comm::Topology plain = ranks_on({{0}, {1}}, {0, 0}), slower = timed(plain, p, {1.2 * p, 1.2 * p});
  int checked = 0;
  for (const LayoutChoice& c : enumerate_layouts(r)) {
    const TimePrediction alone = predict_time(r, c, plain, cost), at_once = predict_time(r, c, slower, cost);
    EXPECT_EQ(alone.at_once, 0);
    EXPECT_NEAR(at_once.step() - at_once.at_once, alone.step(), 1e-12 * alone.step()) << c.name();
    if (c.layout.pipeline == 1) {  // both ranks work the whole step
      EXPECT_NEAR(at_once.at_once, 0.2 * alone.step(), 1e-9 * alone.step()) << c.name();
    } else {  // the bubble runs one rank at a time
      if (c.micro_batches > 1) EXPECT_GT(at_once.at_once, 0) << c.name();
      EXPECT_LT(at_once.at_once, 0.2 * alone.step()) << c.name();
    }
    ++checked;
  }
  EXPECT_GT(checked, 5);
}

TEST(Contention, TheModelsStepAloneScalesTheCostModel) {
  PlanRequest r{.model = kModel, .batch = 8, .ranks = 2, .memory_cap = 1e12};
  const CostModel cost;
  const double predicted = predicted_micro_step_ms();
  const comm::Topology plain = ranks_on({{0}, {1}}, {0, 0});
  comm::Topology slower = timed(plain, 1.5 * predicted, {1.5 * predicted, 1.5 * predicted});
  const std::vector<double> scales = step_scales(slower, kModel, cost);
  ASSERT_EQ(scales.size(), 2u);
  EXPECT_NEAR(scales[0], 1.5, 1e-9);
  EXPECT_NEAR(scales[1], 1.5, 1e-9);
  EXPECT_EQ(step_scales(plain, kModel, cost), (std::vector<double>{1, 1}));
  slower.ranks[1].sgemm_gflops = 100;  // a faster rank predicted: the same time alone is a larger scale
  EXPECT_GT(step_scales(slower, kModel, cost)[1], 1.5);
  slower.ranks[1].sgemm_gflops = 50;
  for (const LayoutChoice& c : enumerate_layouts(r)) {
    const TimePrediction a = predict_time(r, c, plain, cost), b = predict_time(r, c, slower, cost);
    EXPECT_NEAR(b.compute, 1.5 * a.compute, 1e-9 * a.compute) << c.name();
    EXPECT_NEAR(b.optimizer, 1.5 * a.optimizer, 1e-9 * a.optimizer) << c.name();
    EXPECT_EQ(b.at_once, 0) << c.name() << ": at once as fast as alone";
  }
}

TEST(Contention, TimesTheModelHereAndWhatFitsOfIt) {
  std::unique_ptr<comm::Context> context = comm::Context::open();
  comm::Topology t = ranks_on({{0}}, {0});
  measure_micro_steps(*context, kModel, 2, 1e12, t, 1);
  EXPECT_EQ(t.micro_step_of, micro_step_subject(kModel, 2));
  EXPECT_GT(t.ranks[0].micro_step_alone_ms, 0);
  EXPECT_GT(t.ranks[0].micro_step_at_once_ms, 0);
  // A rank's memory for two of the four blocks, not three: weights, gradients, AdamW's moments and one
  // micro-batch's activations in half of it. The first two are timed.
  GptConfig two = kModel;
  two.layers = 2;
  const StageActivations act = stage_activations(two, 2, two.seq_len, 2, true, 1);
  const double memory = 2 * (16 * two.parameter_count() + 4.0 * static_cast<double>(act.kept + act.scratch));
  comm::Topology part = ranks_on({{0}}, {0});
  measure_micro_steps(*context, kModel, 2, 1.01 * memory, part, 1);
  EXPECT_EQ(part.micro_step_of["model"]["layers"], 2);
}

}  // namespace
}  // namespace triad::parallel
