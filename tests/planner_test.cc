// parallel/planner (the Tier I layout planner) and `triad plan`: the memory it predicts against a count made
// here from the parameter layout's tensors and the dataflow table's units, the tensor split of the
// activations, the enumeration against its rules, the ranking, the bubble, and the command end to end.

#include "triad/parallel/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "test_util.h"
#include "triad/comm/buckets.h"
#include "triad/comm/topology.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/model/dataflow.h"
#include "triad/model/params.h"

namespace triad::parallel {
namespace {

using testing::RefusedWith;
using Triple = std::tuple<int, int, int>;  // data, tensor, pipeline

PlanRequest tiny_request(int ranks, int heads = 2) {
  PlanRequest r;
  r.model = {.layers = 4, .d_model = 32, .heads = heads, .seq_len = 16, .vocab = 400};
  r.batch = 8;
  r.ranks = ranks;
  r.memory_cap = 64e6;
  return r;
}

std::vector<PlannedLayout> plan(const PlanRequest& r) {
  const CostModel cost;
  return plan_layouts(r, uniform_topology(r.ranks, 50, cost), cost);
}

// The bytes one rank of stage s holds, counted here from the pieces the planner's header lists.
double counted_bytes(const PlanRequest& r, const LayoutChoice& c, int s, const CostModel& cost) {
  const GptConfig& g = r.model;
  const int p = c.layout.pipeline, dp = c.layout.data, tp = c.layout.tensor, m = c.micro_batches;
  const int mb = r.batch / dp / m, T = g.seq_len;
  const ModelShard shard{.first_block = c.stage_first[s],
                         .blocks = c.stage_first[s + 1] - c.stage_first[s],
                         .embedding = s == 0,
                         .head = s == p - 1,
                         .tensor_size = tp};
  const ParameterLayout layout(g, shard);
  double P = 0;
  for (const TensorSpec& t : layout.tensors()) P += static_cast<double>(t.count);
  double bytes = 8 * P + 8 * (c.zero1 ? std::ceil(P / dp) : P);
  // The activations of the micro-batches in flight: 1F1B holds p - s of them, GPipe all m.
  double kept = 0;
  for (Act kind : {Act::kLn1, Act::kQkv, Act::kAttProbs, Act::kAttOut, Act::kRes2, Act::kLn2, Act::kFc,
                   Act::kGelu, Act::kBlockOut}) {
    kept += shard.blocks * static_cast<double>(unit_elements(g, mb, T, kind, tp));
  }
  kept += unit_elements(g, mb, T, Act::kEmbed, tp);
  if (shard.head) {
    for (Act kind : {Act::kLnf, Act::kLogits, Act::kLoss}) kept += unit_elements(g, mb, T, kind, tp);
  }
  const int in_flight = p == 1 ? 1 : (c.schedule == PipelineSchedule::kGPipe ? m : std::min(p - s, m));
  bytes += 4 * (in_flight * kept + unit_elements(g, mb, T, Act::kScratch, tp));
  const double micro = 4.0 * mb * T * g.d_model;
  if (p > 1) bytes += micro * ((s > 0) * m + (s < p - 1) * m + 1 + (s > 0));
  if (dp > 1) {
    const bool fp16 = c.codec == comm::CodecKind::kFp16;
    if (!c.zero1 && fp16) bytes += (2 + 2) * P + 4 * P / dp;
    if (c.zero1 && !fp16) bytes += (4 + 4) * P;
    if (c.zero1 && fp16) bytes += (2 + 2) * P + 4 * P / dp + 2 * P;
  }
  // Open MPI's scratch for the largest all-reduce: the tied embedding, a bucket, the tensor group's sums.
  double scratch = 0;
  if (p > 1 && (s == 0 || s == p - 1)) scratch = 4.0 * (g.vocab / tp) * g.d_model;
  if (dp > 1 && !c.zero1 && c.codec == comm::CodecKind::kNone) {
    std::vector<comm::GradRange> blocks;
    for (const ParamBlock& b : layout.blocks()) blocks.push_back({b.offset, b.count, {}});
    for (const comm::GradRange& b : comm::plan_buckets(blocks, r.bucket_mb).buckets)
      scratch = std::max(scratch, 4.0 * b.count);
  }
  if (tp > 1) scratch = std::max(scratch, micro);
  return bytes + scratch + cost.process_bytes;
}

TEST(Planner, MemoryIsTheCountOfParametersStateActivationsAndBuffers) {
  const CostModel cost;
  for (int ranks : {1, 2, 4}) {
    const PlanRequest r = tiny_request(ranks);
    for (const PlannedLayout& p : plan(r)) {
      const LayoutChoice& c = p.choice;
      ASSERT_EQ(p.memory.stage_total.size(), static_cast<size_t>(c.layout.pipeline)) << c.name();
      double most = 0;
      for (int s = 0; s < c.layout.pipeline; ++s) {
        const double counted = counted_bytes(r, c, s, cost);
        EXPECT_NEAR(p.memory.stage_total[s], counted, 1e-6 * counted) << c.name() << " stage " << s;
        most = std::max(most, counted);
      }
      EXPECT_NEAR(p.memory.total(), most, 1e-6 * most) << c.name();
      EXPECT_NEAR(p.memory.stage_total[p.memory.stage], most, 1e-6 * most) << c.name();
    }
  }
}

TEST(Planner, TwoTensorRanksHalveTheSplitUnitsAndNothingElse) {
  const GptConfig g{.layers = 3, .d_model = 64, .heads = 4, .seq_len = 32, .vocab = 512};
  const int B = 2, T = 32;
  for (bool head : {false, true}) {
    const StageActivations one = stage_activations(g, B, T, 3, head, 1);
    const StageActivations two = stage_activations(g, B, T, 3, head, 2);
    double split = 0;
    for (Act kind : {Act::kQkv, Act::kAttProbs, Act::kAttOut, Act::kFc, Act::kGelu})
      split += 3.0 * unit_elements(g, B, T, kind);
    if (head) split += unit_elements(g, B, T, Act::kLogits);
    EXPECT_EQ(static_cast<double>(one.kept - two.kept), split / 2) << "head " << head;
    // The scratch's two 4C-wide buffers are split; its two C-wide ones are not.
    EXPECT_EQ(one.scratch - two.scratch, 4u * B * T * g.d_model);
  }
  // And so in the predicted memory: one rank against two tensor ranks on the same micro-batches.
  PlanRequest one = tiny_request(1), two = tiny_request(2);
  const CostModel cost;
  auto find = [](const std::vector<PlannedLayout>& all, int tensor) {
    for (const PlannedLayout& p : all) {
      if (p.choice.layout.tensor == tensor && p.choice.micro_batches == 1) return p;
    }
    ADD_FAILURE() << "no layout of tensor degree " << tensor;
    return all[0];
  };
  const PlannedLayout whole = find(plan(one), 1), halves = find(plan(two), 2);
  const StageActivations a = stage_activations(one.model, 8, 16, 4, true, 1),
                         b = stage_activations(one.model, 8, 16, 4, true, 2);
  EXPECT_EQ(whole.memory.activations - halves.memory.activations,
            4.0 * ((a.kept + a.scratch) - (b.kept + b.scratch)));
}

TEST(Planner, EveryLayoutKeepsTheRulesAndEveryValidOneIsThere) {
  for (int ranks : {1, 2, 3, 4, 6, 8}) {
    for (int heads : {1, 2, 4}) {
      PlanRequest r = tiny_request(ranks, heads);
      r.batch = 12;
      std::set<std::string> names;
      std::set<Triple> triples;
      for (const LayoutChoice& c : enumerate_layouts(r)) {
        const Layout& L = c.layout;
        EXPECT_EQ(L.data * L.tensor * L.pipeline, ranks) << c.name();
        EXPECT_EQ(heads % L.tensor, 0) << c.name();
        EXPECT_EQ(r.model.vocab % L.tensor, 0) << c.name();
        EXPECT_LE(L.pipeline, r.model.layers) << c.name();
        EXPECT_EQ(r.batch % L.data, 0) << c.name();
        EXPECT_EQ(r.batch / L.data % c.micro_batches, 0) << c.name();
        EXPECT_LE(c.micro_batches, 16) << c.name();
        EXPECT_EQ(c.stage_first, split_blocks(r.model.layers, L.pipeline, "")) << c.name();
        if (L.pipeline == 1) {
          EXPECT_EQ(c.schedule, PipelineSchedule::kOneFOneB) << c.name();
        }
        if (L.data == 1) {
          EXPECT_FALSE(c.zero1 || c.codec != comm::CodecKind::kNone) << c.name();
        }
        EXPECT_TRUE(names.insert(c.name()).second) << "twice: " << c.name();
        triples.insert({L.data, L.tensor, L.pipeline});
      }
      std::set<Triple> expected;
      for (int tp = 1; tp <= ranks; ++tp) {
        for (int pp = 1; pp <= ranks; ++pp) {
          if (ranks % (tp * pp) || heads % tp || 400 % tp || pp > 4 || 12 % (ranks / (tp * pp))) continue;
          expected.insert({ranks / (tp * pp), tp, pp});
        }
      }
      EXPECT_EQ(triples, expected) << ranks << " ranks, " << heads << " heads";
    }
  }
}

TEST(Planner, LayoutsThatFitComeFirstFastestFirstThenTheRestBySize) {
  PlanRequest r = tiny_request(4);
  r.memory_cap = 0;
  std::vector<double> totals;
  for (const PlannedLayout& p : plan(r)) totals.push_back(p.memory.total());
  std::sort(totals.begin(), totals.end());
  r.memory_cap = totals[totals.size() / 2];  // about half fit
  const std::vector<PlannedLayout> ranked = plan(r);
  ASSERT_EQ(ranked.size(), totals.size());
  size_t fitting = 0;
  for (size_t i = 0; i < ranked.size(); ++i) {
    EXPECT_EQ(ranked[i].fits, ranked[i].memory.total() <= r.memory_cap) << ranked[i].choice.name();
    fitting += ranked[i].fits;
    if (i == 0) continue;
    const PlannedLayout &a = ranked[i - 1], &b = ranked[i];
    EXPECT_TRUE(a.fits || !b.fits) << "a layout that fits after one that does not: " << b.choice.name();
    if (a.fits && b.fits) {
      EXPECT_LE(a.time.step(), b.time.step() + 1e-4) << b.choice.name();
    } else if (!a.fits && !b.fits) {
      EXPECT_LE(a.memory.total(), b.memory.total()) << b.choice.name();
    }
  }
  EXPECT_GT(fitting, 0u);
  EXPECT_LT(fitting, ranked.size());
  // A tie keeps the enumeration's order: 1F1B, which keeps less, before GPipe at the same micro-batches.
  r.memory_cap = 1e18;
  const std::vector<PlannedLayout> all = plan(r);
  int twins = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const LayoutChoice& g = all[i].choice;
    if (g.schedule != PipelineSchedule::kGPipe) continue;
    for (size_t j = 0; j < all.size(); ++j) {
      const LayoutChoice& o = all[j].choice;
      if (o.schedule == PipelineSchedule::kOneFOneB && o.layout.data == g.layout.data &&
          o.layout.tensor == g.layout.tensor && o.layout.pipeline == g.layout.pipeline &&
          o.micro_batches == g.micro_batches && o.zero1 == g.zero1 && o.codec == g.codec &&
          std::fabs(all[i].time.step() - all[j].time.step()) < 1e-7) {
        EXPECT_LT(j, i) << g.name();
        ++twins;
      }
    }
  }
  EXPECT_GT(twins, 0);
}

TEST(Planner, TheBubbleIsBubbleFractionOfThePipelinedStep) {
  PlanRequest r = tiny_request(4);
  r.batch = 16;
  int pipelines = 0;
  for (const PlannedLayout& p : plan(r)) {
    const TimePrediction& t = p.time;
    const int stages = p.choice.layout.pipeline, m = p.choice.micro_batches;
    const double pipelined = t.compute + t.tensor + t.pipeline + t.bubble;
    EXPECT_NEAR(t.bubble / pipelined, bubble_fraction(stages, m), 1e-12) << p.choice.name();
    EXPECT_GT(t.compute, 0) << p.choice.name();
    if (stages == 1) {
      EXPECT_EQ(t.bubble, 0) << p.choice.name();
    }
    pipelines += stages > 1;
  }
  EXPECT_GT(pipelines, 0);
}

TEST(Planner, CommunicationFollowsTheLayout) {
  PlanRequest r = tiny_request(4);
  for (const PlannedLayout& p : plan(r)) {
    const Layout& L = p.choice.layout;
    const TimePrediction& t = p.time;
    EXPECT_EQ(t.tensor > 0, L.tensor > 1) << p.choice.name();
    EXPECT_EQ(t.pipeline > 0, L.pipeline > 1) << p.choice.name();
    // Data-parallel averaging, or the tied embedding's sum between the end stages.
    EXPECT_EQ(t.data > 0, L.data > 1 || L.pipeline > 1) << p.choice.name();
  }
}

TEST(Planner, ASlowerLinkOrRankCostsTime) {
  const PlanRequest r = tiny_request(2);
  const CostModel cost;
  const LayoutChoice tp2{.layout = {.data = 1, .tensor = 2, .pipeline = 1}, .stage_first = {0, 4}};
  comm::Topology fast = uniform_topology(2, 50, cost), slow = fast;
  slow.bandwidth_MBps[0][1] = slow.bandwidth_MBps[1][0] = 10;
  EXPECT_GT(predict_time(r, tp2, slow, cost).tensor, 10 * predict_time(r, tp2, fast, cost).tensor);
  slow = fast;
  slow.ranks[1].sgemm_gflops = 5;
  EXPECT_GT(predict_time(r, tp2, slow, cost).compute, predict_time(r, tp2, fast, cost).compute);
}

// train's default split weighs the LM head, so a planned even split is asked for by name: the command a plan
// prints runs the split it priced (a run of `dp2·tp1·pp2 m4` without it measured train's [5,1], 2026-12-06).
TEST(Planner, TrainFlagsNameEveryPipelinesSplit) {
  int pipelines = 0;
  for (const LayoutChoice& c : enumerate_layouts(tiny_request(4))) {
    if (c.layout.pipeline == 1) {
      EXPECT_THAT(c.train_flags(), ::testing::Not(::testing::HasSubstr("--pipeline-split"))) << c.name();
      continue;
    }
    std::string split;
    for (int s = 0; s < c.layout.pipeline; ++s) split += (s ? "," : "") + std::to_string(c.stage_blocks(s));
    EXPECT_THAT(c.train_flags(), ::testing::HasSubstr("--pipeline-split " + split)) << c.name();
    ++pipelines;
  }
  EXPECT_GT(pipelines, 0);
}

TEST(Planner, ARequestWithNoLayoutIsRefusedNamingItsFlags) {
  PlanRequest r = tiny_request(7);  // 7 stages of 4 blocks, or 7 tensor ranks of 2 heads: neither
  try {
    enumerate_layouts(r);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--ranks 7"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--heads 2"));
  }
}

TEST(Format, ParseBytesTakesTheUnitsPeopleWrite) {
  EXPECT_EQ(parse_bytes("2GiB"), 2.0 * (1 << 30));
  EXPECT_EQ(parse_bytes("512MiB"), 512.0 * (1 << 20));
  EXPECT_EQ(parse_bytes("1.5GB"), 1.5e9);
  EXPECT_EQ(parse_bytes("1048576"), 1048576.0);
  for (const char* bad : {"", "lots", "2 GiB", "-1MiB", "2GiBs", "GiB", "nan"}) {
    EXPECT_FALSE(parse_bytes(bad).has_value()) << bad;
  }
}

// The (data, tensor, pipeline) degrees of `triad plan --json`'s layouts.
std::set<Triple> planned_triples(const std::string& flags) {
  const auto r = testing::run_triad(
      "plan --json --layers 4 --d-model 32 --seq-len 16 --vocab 400 --batch 8 "
      "--ranks 4 --memory-per-rank 1GiB --gflops 50 " +
      flags);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json plan = nlohmann::json::parse(r.out);
  std::set<Triple> triples;
  for (const nlohmann::json& l : plan.at("layouts")) {
    EXPECT_EQ(l.at("data").get<int>() * l.at("tensor").get<int>() * l.at("pipeline").get<int>(), 4);
    triples.insert({l.at("data").get<int>(), l.at("tensor").get<int>(), l.at("pipeline").get<int>()});
  }
  EXPECT_EQ(plan.at("choice"), plan.at("layouts")[0].at("layout"));
  return triples;
}

TEST(PlanCommand, ListsTheLayoutsOfFourRanks) {
  // Two heads: no 4 tensor ranks.
  EXPECT_EQ(planned_triples("--heads 2"),
            (std::set<Triple>{{4, 1, 1}, {2, 1, 2}, {1, 1, 4}, {2, 2, 1}, {1, 2, 2}}));
  EXPECT_EQ(planned_triples("--heads 4"),
            (std::set<Triple>{{4, 1, 1}, {2, 1, 2}, {1, 1, 4}, {2, 2, 1}, {1, 2, 2}, {1, 4, 1}}));
}

TEST(PlanCommand, PrintsARankedTableWithTheChoiceAndItsTrainFlags) {
  const auto r = testing::run_triad(
      "plan --layers 4 --d-model 32 --heads 2 --seq-len 16 --vocab 400 --batch 8 "
      "--ranks 4 --memory-per-rank 1GiB --gflops 50 --top 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("<- choice"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("dp2·tp1·pp2"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("m4 1f1b zero1 none"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("choice: triad train --layers 4 --d-model 32 --heads 2"));
}

TEST(PlanCommand, SaysWhenTheTopologysRanksShareCores) {
  testing::TempDir dir;
  comm::Topology topology = uniform_topology(4, 50, CostModel{});
  for (comm::RankInfo& rank : topology.ranks) {  // four ranks on two CPUs of one host
    rank.host = "node-a";
    rank.cpus = {0, 1};
    rank.codec_ns_per_float = {{"fp16", 0.3}, {"int8", 0.7}, {"topk", 1}, {"powersgd", 1}};
  }
  testing::write_text(dir / "shared.json", comm::topology_to_json(topology).dump());
  const std::string plan =
      "plan --layers 4 --d-model 32 --heads 2 --seq-len 16 --vocab 400 --batch 8 --ranks 4 "
      "--memory-per-rank 1GiB --topology ";
  auto r = testing::run_triad(plan + dir / "shared.json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("note: node-a: ranks 0, 1, 2, 3 share 2 CPUs: they take turns"));
  for (int i = 0; i < 4; ++i) topology.ranks[i].cpus = {i};  // a core each
  testing::write_text(dir / "own.json", comm::topology_to_json(topology).dump());
  r = testing::run_triad(plan + dir / "own.json" + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out).at("shared_cores").empty());
}

TEST(PlanCommand, AnImpossibleMemoryCapSaysWhatTheSmallestLayoutNeeds) {
  const std::string model =
      "plan --layers 4 --d-model 32 --heads 2 --seq-len 16 --vocab 400 --batch 8 --ranks 4 "
      "--gflops 50 ";
  const auto r = testing::run_triad(model + "--memory-per-rank 1MiB");
  EXPECT_THAT(r, RefusedWith("no layout fits --memory-per-rank 1MiB: the smallest needs"));
  EXPECT_THAT(testing::run_triad(model + "--memory-per-rank lots"), RefusedWith("--memory-per-rank lots"));
  EXPECT_THAT(testing::run_triad(model + "--memory-per-rank 1GiB --heads 3"), RefusedWith("--heads 3"));
  EXPECT_THAT(testing::run_triad(model + "--memory-per-rank 1GiB --topology /nonexistent.json"),
              RefusedWith("--topology"));
}

}  // namespace
}  // namespace triad::parallel
