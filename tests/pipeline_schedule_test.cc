// parallel/pipeline_schedule: the op orders of each stage run together in a discrete-event simulation of
// the runner's blocking, rendezvous messages (written here from the header's contract, not from the
// implementation), the stage splits against their rules, and the balanced split against brute force.

#include "triad/parallel/pipeline_schedule.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <tuple>

#include "triad/core/error.h"

namespace triad::parallel {
namespace {

using Kind = PipelineOp::Kind;
constexpr PipelineSchedule kSchedules[] = {PipelineSchedule::kOneFOneB, PipelineSchedule::kGPipe};
constexpr double kForwardTime = 1, kBackwardTime = 2;

// One message end: stage `peer` is the other side; `tag` is the micro-batch, negated-minus-one for
// gradients so activations and gradients of one micro-batch differ.
struct Post {
  int peer;
  bool send;
  int tag;
};
// A stage's program: waits for a set of posts to complete (all posted at once), or computes one op.
struct Step {
  std::vector<Post> posts;
  const PipelineOp* op = nullptr;
};

enum class Runner {
  kPerOp,     // each op: its receive, compute, its send, each message blocking on its own
  kExchange,  // as kPerOp, but a send and the next op's receive to the same neighbour are one exchange
};

std::vector<Step> program(const std::vector<PipelineOp>& ops, int s, int p, Runner runner) {
  std::vector<Step> steps;
  // The previous op's send, not yet a step: under kExchange this op's receive joins it when both are with
  // the same neighbour.
  std::vector<Post> pending;
  for (const PipelineOp& op : ops) {
    const bool fwd = op.kind == Kind::kForward;
    const int tag = fwd ? op.micro_batch : -op.micro_batch - 1;
    const int from = fwd ? s - 1 : s + 1, to = fwd ? s + 1 : s - 1;
    if (from >= 0 && from < p) {
      if (runner == Runner::kExchange && !pending.empty() && pending[0].peer == from) {
        pending.push_back({from, false, tag});
      } else {
        if (!pending.empty()) steps.push_back({pending});
        pending = {{from, false, tag}};
      }
    }
    if (!pending.empty()) steps.push_back({pending});
    pending.clear();
    steps.push_back({{}, &op});
    if (to >= 0 && to < p) pending = {{to, true, tag}};
  }
  if (!pending.empty()) steps.push_back({pending});
  return steps;
}

struct Simulation {
  bool deadlock = false;
  double makespan = 0, busy = 0;
  // (stage, forward?, micro-batch) → start and end of its compute; count of runs.
  std::map<std::tuple<int, bool, int>, std::pair<double, double>> runs;
  std::map<std::tuple<int, bool, int>, int> count;
};

// Every stage runs its program from time 0. A post completes when its partner (the peer's post to this
// stage with the same tag, the other direction) is posted too, at the later of the two posting times; a
// step completes when all its posts have.
Simulation simulate(const std::vector<std::vector<PipelineOp>>& ops, Runner runner) {
  const int p = static_cast<int>(ops.size());
  std::vector<std::vector<Step>> steps;
  for (int s = 0; s < p; ++s) steps.push_back(program(ops[s], s, p, runner));
  std::vector<size_t> pc(p, 0);
  std::vector<double> now(p, 0);
  std::vector<std::vector<double>> done(p);  // completion time of each post of the current step; -1: not yet
  Simulation sim;
  auto start_step = [&](int s) {
    if (pc[s] < steps[s].size()) done[s].assign(steps[s][pc[s]].posts.size(), -1);
  };
  for (int s = 0; s < p; ++s) start_step(s);
  for (bool progress = true; progress;) {
    progress = false;
    for (int s = 0; s < p; ++s) {
      if (pc[s] == steps[s].size()) continue;
      const Step& step = steps[s][pc[s]];
      if (step.op) {
        const bool fwd = step.op->kind == Kind::kForward;
        const double t = fwd ? kForwardTime : kBackwardTime;
        sim.runs[{s, fwd, step.op->micro_batch}] = {now[s], now[s] + t};
        ++sim.count[{s, fwd, step.op->micro_batch}];
        now[s] += t, sim.busy += t;
      } else {
        for (size_t k = 0; k < step.posts.size(); ++k) {
          const Post& mine = step.posts[k];
          const int q = mine.peer;
          if (done[s][k] >= 0 || pc[q] == steps[q].size()) continue;
          const std::vector<Post>& theirs = steps[q][pc[q]].posts;
          for (size_t j = 0; j < theirs.size(); ++j) {
            if (theirs[j].peer == s && theirs[j].send != mine.send && theirs[j].tag == mine.tag &&
                done[q][j] < 0) {
              done[s][k] = done[q][j] = std::max(now[s], now[q]);
            }
          }
        }
        if (std::find(done[s].begin(), done[s].end(), -1.0) != done[s].end()) continue;
        for (double t : done[s]) now[s] = std::max(now[s], t);
      }
      ++pc[s];
      start_step(s);
      progress = true;
    }
  }
  for (int s = 0; s < p; ++s) {
    sim.deadlock |= pc[s] != steps[s].size();
    sim.makespan = std::max(sim.makespan, now[s]);
  }
  return sim;
}

Simulation simulate(PipelineSchedule schedule, int p, int m, Runner runner) {
  std::vector<std::vector<PipelineOp>> ops;
  for (int s = 0; s < p; ++s) ops.push_back(stage_ops(schedule, s, p, m));
  return simulate(ops, runner);
}

TEST(PipelineSchedule, StagesRunEveryMicroBatchOnceWithoutDeadlockInTheBoundTime) {
  for (PipelineSchedule schedule : kSchedules) {
    for (int p = 1; p <= 4; ++p) {
      for (int m = 1; m <= 8; ++m) {
        SCOPED_TRACE(fmt::format("{} p={} m={}", schedule_name(schedule), p, m));
        for (int s = 0; s < p; ++s) {
          const std::vector<PipelineOp> ops = stage_ops(schedule, s, p, m);
          ASSERT_EQ(ops.size(), 2u * m);
          for (int i = 0; i < m; ++i) {
            auto f = std::find(ops.begin(), ops.end(), PipelineOp{Kind::kForward, i});
            auto b = std::find(ops.begin(), ops.end(), PipelineOp{Kind::kBackward, i});
            EXPECT_NE(b, ops.end()) << "stage " << s << " micro-batch " << i;
            EXPECT_LT(f, b) << "stage " << s << " micro-batch " << i;
          }
        }
        const Simulation sim = simulate(schedule, p, m, Runner::kExchange);
        ASSERT_FALSE(sim.deadlock);
        for (int s = 0; s < p; ++s) {
          for (int i = 0; i < m; ++i) {
            EXPECT_EQ((sim.count.at({s, true, i})), 1);
            EXPECT_EQ((sim.count.at({s, false, i})), 1);
            const auto f = sim.runs.at({s, true, i}), b = sim.runs.at({s, false, i});
            EXPECT_LE(f.second, b.first);
            if (s > 0) {
              EXPECT_LE(sim.runs.at({s - 1, true, i}).second, f.first);
            }
            if (s < p - 1) {
              EXPECT_LE(sim.runs.at({s + 1, false, i}).second, b.first);
            }
          }
        }
        EXPECT_EQ(sim.makespan, (m + p - 1) * (kForwardTime + kBackwardTime));
        EXPECT_NEAR(1 - sim.busy / (p * sim.makespan), bubble_fraction(p, m), 1e-12);
      }
    }
  }
}

// The reason for the exchange in the runner's contract: with every message on its own, 1F1B's stages
// (whose op orders differ) both send at once and neither receives. GPipe's orders are alike on every stage.
TEST(PipelineSchedule, OneFOneBNeedsTheExchangeGPipeDoesNot) {
  for (int p = 1; p <= 4; ++p) {
    for (int m = 1; m <= 8; ++m) {
      SCOPED_TRACE(fmt::format("p={} m={}", p, m));
      EXPECT_EQ(simulate(PipelineSchedule::kOneFOneB, p, m, Runner::kPerOp).deadlock, p >= 2 && m >= 2);
      const Simulation gpipe = simulate(PipelineSchedule::kGPipe, p, m, Runner::kPerOp);
      EXPECT_FALSE(gpipe.deadlock);
      EXPECT_EQ(gpipe.makespan, (m + p - 1) * (kForwardTime + kBackwardTime));
    }
  }
}

TEST(PipelineSchedule, OneFOneBWarmsUpThenAlternates) {
  auto F = [](int i) { return PipelineOp{Kind::kForward, i}; };
  auto B = [](int i) { return PipelineOp{Kind::kBackward, i}; };
  EXPECT_THAT(stage_ops(PipelineSchedule::kOneFOneB, 1, 4, 4),
              ::testing::ElementsAre(F(0), F(1), F(2), B(0), F(3), B(1), B(2), B(3)));
  EXPECT_THAT(stage_ops(PipelineSchedule::kOneFOneB, 3, 4, 2),
              ::testing::ElementsAre(F(0), B(0), F(1), B(1)));
  EXPECT_THAT(stage_ops(PipelineSchedule::kOneFOneB, 0, 4, 2),
              ::testing::ElementsAre(F(0), F(1), B(0), B(1)));
  EXPECT_THAT(stage_ops(PipelineSchedule::kGPipe, 1, 4, 2), ::testing::ElementsAre(F(0), F(1), B(0), B(1)));
}

// Gradients accumulate in the order the backwards run; alike in both, the sums are the same to the bit.
TEST(PipelineSchedule, BothSchedulesRunBackwardsInMicroBatchOrder) {
  for (PipelineSchedule schedule : kSchedules) {
    for (int p = 1; p <= 4; ++p) {
      for (int s = 0; s < p; ++s) {
        std::vector<int> order;
        for (const PipelineOp& op : stage_ops(schedule, s, p, 6)) {
          if (op.kind == Kind::kBackward) order.push_back(op.micro_batch);
        }
        EXPECT_THAT(order, ::testing::ElementsAre(0, 1, 2, 3, 4, 5));
      }
    }
  }
}

// GPipe's backwards could as well run last-first: as fast (the header's reason for micro-batch order is
// the order gradients accumulate in, not time).
TEST(PipelineSchedule, GPipeBackwardsLastFirstTakeAsLong) {
  for (int p = 1; p <= 4; ++p) {
    for (int m = 1; m <= 8; ++m) {
      std::vector<std::vector<PipelineOp>> ops;
      for (int s = 0; s < p; ++s) {
        ops.push_back(stage_ops(PipelineSchedule::kGPipe, s, p, m));
        std::reverse(ops.back().begin() + m, ops.back().end());
      }
      const Simulation sim = simulate(ops, Runner::kPerOp);
      EXPECT_FALSE(sim.deadlock);
      EXPECT_EQ(sim.makespan, (m + p - 1) * (kForwardTime + kBackwardTime));
    }
  }
}

TEST(PipelineSchedule, InFlightMicroBatches) {
  for (int p = 1; p <= 5; ++p) {
    for (int m = 1; m <= 8; ++m) {
      for (int s = 0; s < p; ++s) {
        EXPECT_EQ(max_in_flight(stage_ops(PipelineSchedule::kOneFOneB, s, p, m)), std::min(p - s, m));
        EXPECT_EQ(max_in_flight(stage_ops(PipelineSchedule::kGPipe, s, p, m)), m);
      }
    }
  }
  EXPECT_EQ(max_in_flight({}), 0);
}

TEST(PipelineSchedule, BubbleAndNames) {
  EXPECT_DOUBLE_EQ(bubble_fraction(4, 8), 3.0 / 11);
  EXPECT_DOUBLE_EQ(bubble_fraction(1, 8), 0);
  for (PipelineSchedule schedule : kSchedules)
    EXPECT_EQ(parse_pipeline_schedule(schedule_name(schedule)), schedule);
  try {
    parse_pipeline_schedule("1F1B");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--pipeline-schedule must be 1f1b or gpipe"));
  }
}

void expect_usage_error(const std::function<void()>& call, const std::string& text) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one saying " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_THAT(e.what(), ::testing::HasSubstr(text));
  }
}

TEST(PipelineSchedule, SplitBlocks) {
  using ::testing::ElementsAre;
  EXPECT_THAT(split_blocks(4, 2, ""), ElementsAre(0, 2, 4));
  EXPECT_THAT(split_blocks(5, 2, ""), ElementsAre(0, 3, 5));
  EXPECT_THAT(split_blocks(4, 4, ""), ElementsAre(0, 1, 2, 3, 4));
  EXPECT_THAT(split_blocks(11, 4, ""), ElementsAre(0, 3, 6, 9, 11));
  EXPECT_THAT(split_blocks(7, 1, ""), ElementsAre(0, 7));
  EXPECT_THAT(split_blocks(4, 2, "3,1"), ElementsAre(0, 3, 4));
  EXPECT_THAT(split_blocks(6, 3, " 1, 2 ,3"), ElementsAre(0, 1, 3, 6));
}

TEST(PipelineSchedule, SplitsThatLeaveOutOrInventBlocksAreRefused) {
  expect_usage_error([] { split_blocks(4, 2, "2,1"); },
                     "--pipeline-split \"2,1\" covers 3 of 4 blocks; every block must belong to a stage");
  expect_usage_error([] { split_blocks(4, 2, "3,3"); }, "--pipeline-split \"3,3\" asks for 6 blocks");
  expect_usage_error([] { split_blocks(4, 2, "4"); }, "gives 1 block counts for --pipeline-parallel 2");
  expect_usage_error([] { split_blocks(4, 2, "1,1,2"); }, "gives 3 block counts for --pipeline-parallel 2");
  expect_usage_error([] { split_blocks(4, 2, "4,0"); }, "--pipeline-split \"4,0\" gives stage 1 0 blocks");
  expect_usage_error([] { split_blocks(4, 2, "5,-1"); }, "--pipeline-split \"5,-1\" gives stage 1 -1 blocks");
  for (const char* garbage :
       {"3,x", "3,,1", "3.5,0.5", "3,1,", ",", "3;1", "+3,1", "99999999999,1", "two,two"}) {
    expect_usage_error([&] { split_blocks(4, 2, garbage); }, fmt::format("--pipeline-split \"{}\"", garbage));
  }
  expect_usage_error([] { split_blocks(2, 3, ""); },
                     "--pipeline-parallel 3 is more stages than the model's 2");
  expect_usage_error([] { split_blocks(2, 3, "1,1,0"); }, "--pipeline-parallel 3");
  expect_usage_error([] { split_blocks(2, 0, ""); }, "--pipeline-parallel must be at least 1");
}

TEST(PipelineSchedule, BalancedSplitFollowsSpeeds) {
  using ::testing::ElementsAre;
  EXPECT_THAT(balanced_split(4, {1, 1}), ElementsAre(0, 2, 4));
  EXPECT_THAT(balanced_split(6, {2, 1}), ElementsAre(0, 4, 6));
  EXPECT_THAT(balanced_split(8, {1, 3}), ElementsAre(0, 2, 8));
  EXPECT_THAT(balanced_split(3, {100, 1, 1}), ElementsAre(0, 1, 2, 3));  // every stage keeps a block
  for (int layers = 1; layers <= 12; ++layers) {
    for (int p = 1; p <= std::min(layers, 5); ++p) {
      EXPECT_EQ(balanced_split(layers, std::vector<double>(p, 0.7)), split_blocks(layers, p, ""));
    }
  }
  expect_usage_error([] { balanced_split(2, {1, 1, 1}); }, "--pipeline-parallel 3");
  EXPECT_THROW(balanced_split(4, {1, 0}), Error);
  EXPECT_THROW(balanced_split(4, {1, std::nan("")}), Error);
}

// Every composition of `layers` into len(speed) positive parts, by the rule in the header.
std::vector<int> brute_force_split(int layers, const std::vector<double>& speed) {
  const int p = static_cast<int>(speed.size());
  std::vector<std::vector<int>> all;
  std::vector<int> parts;
  std::function<void(int)> compose = [&](int left) {
    if (static_cast<int>(parts.size()) == p - 1) {
      parts.push_back(left);
      all.push_back(parts);
      parts.pop_back();
      return;
    }
    for (int c = 1; c <= left - (p - 1 - static_cast<int>(parts.size())); ++c) {
      parts.push_back(c);
      compose(left - c);
      parts.pop_back();
    }
  };
  compose(layers);
  auto worst = [&](const std::vector<int>& c) {
    double w = 0;
    for (int s = 0; s < p; ++s) w = std::max(w, c[s] / speed[s]);
    return w;
  };
  double best = worst(all[0]);
  for (const auto& c : all) best = std::min(best, worst(c));
  std::vector<int> pick;
  long long pick_squares = 0;
  for (const auto& c : all) {
    if (worst(c) > best * (1 + 1e-9)) continue;
    long long squares = 0;
    for (int x : c) squares += x * x;
    if (pick.empty() || squares < pick_squares || (squares == pick_squares && c > pick))
      pick = c, pick_squares = squares;
  }
  std::vector<int> first = {0};
  for (int x : pick) first.push_back(first.back() + x);
  return first;
}

TEST(PipelineSchedule, BalancedSplitMatchesBruteForce) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> speed(0.2, 3.0);
  std::uniform_int_distribution<int> small(1, 4);
  for (int trial = 0; trial < 300; ++trial) {
    const int p = 1 + trial % 5, layers = p + static_cast<int>(rng() % 10);
    std::vector<double> speeds(p);
    // Half the trials take speeds of small integer ratios, where ties are common.
    for (double& v : speeds) v = trial % 2 ? speed(rng) : small(rng) * 0.1;
    SCOPED_TRACE(fmt::format("layers {} speeds {}", layers, fmt::join(speeds, ",")));
    EXPECT_EQ(balanced_split(layers, speeds), brute_force_split(layers, speeds));
  }
}

}  // namespace
}  // namespace triad::parallel
