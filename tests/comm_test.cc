// The communication layer's single-process parts: codec arithmetic, flag parsing, bucketing, the cost model
// and GradSync without a launcher. Multi-rank behaviour is in comm_collectives_mpitest.cc.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "triad/cli/options.h"
#include "triad/comm/grad_sync.h"
#include "triad/comm/kernels.h"
#include "triad/comm/options.h"
#include "triad/comm/topology.h"
#include "triad/core/error.h"

namespace triad::comm {
namespace {

std::vector<float> values(size_t n, uint64_t seed, float scale) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = (static_cast<float>(mix64(seed + i) >> 40) * 0x1p-24f - 0.5f) * 2 * scale;
  return x;
}

TEST(CommKernels, Fp16RoundsToNearestAndSaturates) {
  std::vector<float> x = values(1003, 1, 100.0f);
  x.push_back(1e6f);
  x.push_back(-1e6f);
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  x.push_back(0.5f);  // exactly representable
  std::vector<uint16_t> half(x.size());
  std::vector<float> back(x.size());
  fp16_encode(x.data(), x.size(), half.data());
  fp16_decode(half.data(), half.size(), back.data());
  for (size_t i = 0; i < 1003; ++i) {
    ASSERT_LE(std::fabs(back[i] - x[i]), std::ldexp(std::fabs(x[i]), -11) + 0x1p-25f) << "at " << i;
  }
  EXPECT_EQ(back[1003], 65504.0f);
  EXPECT_EQ(back[1004], -65504.0f);
  EXPECT_TRUE(std::isnan(back[1005]));
  EXPECT_EQ(back[1006], 0.5f);
  std::vector<float> acc(x.size(), 1.0f);
  fp16_decode_add(half.data(), half.size(), acc.data());
  EXPECT_EQ(acc[1006], 1.5f);
}

TEST(CommKernels, Int8ErrorIsHalfAScalePerChunk) {
  const size_t n = 1000, chunk = 128;
  std::vector<float> x = values(n, 2, 3.0f);
  std::fill(x.begin() + 256, x.begin() + 384, 0.0f);  // an all-zero chunk
  std::vector<uint8_t> bytes(int8_bytes(n, chunk));
  EXPECT_EQ(bytes.size(), 8 * 4 + n);
  std::vector<float> back(n);
  for (uint64_t noise : {uint64_t(0), uint64_t(99)}) {
    int8_encode(x.data(), n, chunk, noise, bytes.data());
    int8_decode(bytes.data(), n, chunk, back.data());
    for (size_t c = 0; c * chunk < n; ++c) {
      size_t begin = c * chunk, end = std::min(n, begin + chunk);
      float max_abs = 0;
      for (size_t i = begin; i < end; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
      float bound = max_abs / 127 * (noise ? 1.0f : 0.5f) * 1.0001f;
      for (size_t i = begin; i < end; ++i) ASSERT_LE(std::fabs(back[i] - x[i]), bound) << "at " << i;
    }
    for (size_t i = 256; i < 384; ++i) ASSERT_EQ(back[i], 0.0f);
  }
  // A chunk with an infinity decodes to NaN rather than to plausible numbers.
  x[5] = std::numeric_limits<float>::infinity();
  int8_encode(x.data(), n, chunk, 0, bytes.data());
  int8_decode(bytes.data(), n, chunk, back.data());
  EXPECT_TRUE(std::isnan(back[0]));
  EXPECT_FALSE(std::isnan(back[200]));
}

TEST(CommKernels, TopKSelectsTheLargestMagnitudesInIndexOrder) {
  std::vector<float> x = {0.1f, -5.0f, 3.0f, -3.0f, 0.0f, 4.0f, 3.0f, -0.2f};
  std::vector<uint32_t> index(4);
  std::vector<float> value(4), scratch(x.size());
  topk_select(x.data(), x.size(), 4, index.data(), value.data(), scratch.data());
  // |x| = 5, 4 then three 3s: the tie goes to the lowest indices.
  EXPECT_EQ(index, (std::vector<uint32_t>{1, 2, 3, 5}));
  EXPECT_EQ(value, (std::vector<float>{-5.0f, 3.0f, -3.0f, 4.0f}));
  x[7] = std::numeric_limits<float>::quiet_NaN();
  topk_select(x.data(), x.size(), 1, index.data(), value.data(), scratch.data());
  EXPECT_EQ(index[0], 7u);

  std::vector<float> big = values(5000, 3, 1.0f);
  std::vector<uint32_t> top(50);
  std::vector<float> top_value(50), big_scratch(big.size());
  topk_select(big.data(), big.size(), 50, top.data(), top_value.data(), big_scratch.data());
  std::vector<float> sorted(big.size());
  std::transform(big.begin(), big.end(), sorted.begin(), [](float v) { return std::fabs(v); });
  std::sort(sorted.rbegin(), sorted.rend());
  EXPECT_TRUE(std::is_sorted(top.begin(), top.end()));
  for (size_t j = 0; j < 50; ++j) EXPECT_GE(std::fabs(top_value[j]), sorted[49]);
}

TEST(CommKernels, TopKOnLargeInputsMatchesTheSortedDefinition) {
  // Large inputs take the sampled-threshold path; coarse values make many ties at the threshold.
  const size_t n = 200003;
  for (float step : {0.0f, 0.01f}) {
    std::vector<float> x = values(n, 6, 1.0f);
    if (step > 0) {
      for (float& v : x) v = std::round(v / step) * step;
    }
    for (size_t k : {size_t(1), size_t(2000), size_t(12000)}) {
      std::vector<uint32_t> index(k);
      std::vector<float> value(k), scratch(n);
      topk_select(x.data(), n, k, index.data(), value.data(), scratch.data());
      // The definition: stable sort by decreasing magnitude, take k, report in index order.
      std::vector<uint32_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](uint32_t a, uint32_t b) { return std::fabs(x[a]) > std::fabs(x[b]); });
      std::vector<uint32_t> expected(order.begin(), order.begin() + k);
      std::sort(expected.begin(), expected.end());
      ASSERT_EQ(index, expected) << "k " << k << " step " << step;
      for (size_t j = 0; j < k; ++j) ASSERT_EQ(value[j], x[index[j]]);
    }
  }
}

TEST(CommKernels, IndexCodeRoundTripsInAboutTwoPlusLog2BitsEach) {
  std::mt19937 rng(5);
  struct Case {
    size_t n, k;
  };
  for (Case c :
       {Case{1, 1}, Case{7, 7}, Case{100, 1}, Case{1000, 10}, Case{1 << 20, 10486}, Case{77777, 333}}) {
    // k distinct indices at random; the extremes 0 and n - 1 whenever k >= 2.
    std::vector<uint32_t> index;
    if (c.k >= 2) index = {0, static_cast<uint32_t>(c.n - 1)};
    std::vector<uint32_t> interior(c.n - index.size());
    std::iota(interior.begin(), interior.end(), index.empty() ? 0 : 1);
    std::shuffle(interior.begin(), interior.end(), rng);
    for (size_t j = 0; index.size() < c.k; ++j) index.push_back(interior[j]);
    std::sort(index.begin(), index.end());
    size_t bytes = index_code_bytes(c.n, c.k);
    // Elias-Fano's bound: k (2 + ceil(log2(n / k))) bits, rounded up to bytes.
    double bound_bits = c.k * (2 + std::ceil(std::log2(double(c.n) / c.k)));
    EXPECT_LE(bytes, static_cast<size_t>(std::ceil(bound_bits / 8))) << "n " << c.n << " k " << c.k;
    std::vector<uint8_t> code(bytes + 1, 0xAB);  // the byte past the end must stay untouched
    index_encode(index.data(), c.k, c.n, code.data());
    EXPECT_EQ(code[bytes], 0xAB);
    std::vector<uint32_t> back(c.k);
    ASSERT_TRUE(index_decode(code.data(), c.k, c.n, back.data()));
    EXPECT_EQ(back, index) << "n " << c.n << " k " << c.k;
  }
  // At 1 % the code takes about 8.6 bits an index, against 32 for raw uint32.
  EXPECT_LT(index_code_bytes(1 << 20, 10486), 10486 * 9 / 8);

  // A stream that is not a valid code is refused, not decoded into indices out of range.
  std::vector<uint32_t> index = {3, 9, 40};
  std::vector<uint8_t> code(index_code_bytes(50, 3));
  index_encode(index.data(), 3, 50, code.data());
  std::vector<uint32_t> back(3);
  ASSERT_TRUE(index_decode(code.data(), 3, 50, back.data()));
  EXPECT_EQ(back, index);
  std::vector<uint8_t> zeros(code.size(), 0), ones(code.size(), 0xFF);
  EXPECT_FALSE(index_decode(zeros.data(), 3, 50, back.data()));  // no high bit set: no index at all
  EXPECT_FALSE(index_decode(ones.data(), 3, 50, back.data()));   // 15, 15, 15: not increasing
}

TEST(CommKernels, OrthogonalizeMakesOrthonormalColumns) {
  const size_t rows = 50, cols = 4;
  std::vector<float> p = values(rows * cols, 4, 1.0f);
  for (size_t r = 0; r < rows; ++r) p[r * cols + 2] = 0;  // a zero column stays zero
  orthogonalize(p.data(), rows, cols);
  for (size_t a = 0; a < cols; ++a) {
    for (size_t b = 0; b < cols; ++b) {
      double dot = 0;
      for (size_t r = 0; r < rows; ++r) dot += p[r * cols + a] * p[r * cols + b];
      double expected = a == b && a != 2 ? 1.0 : 0.0;
      EXPECT_NEAR(dot, expected, 1e-5) << a << "," << b;
    }
  }
}

TEST(CommCodecSpec, ParsesEveryCodecAndRejectsNonsense) {
  for (const char* name : {"none", "fp16", "int8", "topk:0.01", "powersgd:4", "auto:fp16,topk:0.001"}) {
    EXPECT_EQ(parse_codec_spec(name).name(), name);
  }
  CodecSpec automatic = parse_codec_spec("auto");
  EXPECT_EQ(automatic.kind, CodecKind::kAuto);
  EXPECT_EQ(automatic.name(), "auto:fp16,int8,topk:0.01,powersgd:4");
  EXPECT_EQ(parse_codec_spec("topk:0.5").ratio, 0.5);
  EXPECT_EQ(parse_codec_spec("powersgd:8").rank, 8);
  for (const char* bad : {"zip", "topk", "topk:0", "topk:2", "topk:x", "powersgd:0", "powersgd:1.5", "fp16:3",
                          "auto:auto", "auto:zip"}) {
    try {
      parse_codec_spec(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUsage) << bad;
      EXPECT_EQ(std::string(e.what()).rfind("--grad-compression ", 0), 0u) << e.what();
    }
  }
}

TEST(CommBuckets, WholeBlocksFromTheLastBackwards) {
  // Embeddings (1 MiB), three blocks of 0.5 MiB, final LayerNorm (tiny).
  const size_t mib = 1 << 18;  // floats per MiB
  std::vector<GradRange> blocks = {{0, mib, {}},
                                   {mib, mib / 2, {Matrix{mib, 256, 512}}},
                                   {mib * 3 / 2, mib / 2, {}},
                                   {2 * mib, mib / 2, {}},
                                   {mib * 5 / 2, 100, {}}};
  BucketPlan plan = plan_buckets(blocks, 1.0);
  ASSERT_EQ(plan.buckets.size(), 2u);
  EXPECT_EQ(plan.buckets[0].offset, mib * 3 / 2);  // LayerNorm + blocks 3 and 2 reach 1 MiB
  EXPECT_EQ(plan.buckets[0].count, mib + 100);
  EXPECT_EQ(plan.buckets[1].offset, 0u);  // block 1 alone is short of 1 MiB, so the embeddings join it
  EXPECT_EQ(plan.buckets[1].count, mib * 3 / 2);
  ASSERT_EQ(plan.buckets[1].matrices.size(), 1u);
  EXPECT_EQ(plan.ready_after_block, (std::vector<int>{1, -1, 0, -1, -1}));
  EXPECT_EQ(plan_buckets(blocks, 0).buckets.size(), blocks.size());
  blocks[2].offset += 1;
  EXPECT_THROW(plan_buckets(blocks, 1.0), Error);
}

TEST(CommWire, BytesAndStepsOfEachCollective) {
  EXPECT_EQ(bytes_sent({Collective::kAllreduce, 1000, 4}), 1500u);
  EXPECT_EQ(bytes_sent({Collective::kAllgather, 1000, 4}), 3000u);
  EXPECT_EQ(bytes_sent({Collective::kAlltoall, 1000, 4}), 750u);
  EXPECT_EQ(bytes_sent({Collective::kAllreduce, 1000, 1}), 0u);
  EXPECT_EQ(message_steps({Collective::kAllreduce, 1000, 4}), 6);
  EXPECT_EQ(message_steps({Collective::kBroadcast, 1000, 8}), 3);
  // What each codec sends for a 1 Mi-float bucket between 2 ranks, relative to none (4 MiB).
  GradRange bucket{0, 1 << 20, {Matrix{0, 1024, 1024}}};
  auto total = [&](const char* codec) {
    uint64_t bytes = 0;
    for (const Transfer& t : codec_transfers(parse_codec_spec(codec), bucket, 2, {}, 0))
      bytes += bytes_sent(t);
    return bytes;
  };
  EXPECT_EQ(total("none"), 4u << 20);
  EXPECT_EQ(total("fp16"), 2u << 20);
  EXPECT_EQ(total("int8"), (1u << 20) + 4 * 4096);  // one float scale per 256 values
  // top-K: 10486 Elias-Fano indices (6 low bits each, then (2^20 - 1 >> 6) + 10486 high bits) + fp16 values.
  EXPECT_EQ(total("topk:0.01"), (10486 * 6 + 16383 + 10486 + 7) / 8 + 2u * 10486);
  EXPECT_EQ(total("powersgd:4"), 4u * 4 * 2048);
}

Topology two_ranks(double bandwidth_MBps, double latency_us) {
  Topology t;
  t.world = 2;
  for (int r = 0; r < 2; ++r)
    t.ranks.push_back(RankInfo{"h", r, 50, {{"fp16", 0.2}, {"int8", 0.7}, {"topk", 1}, {"powersgd", 1}}, {}});
  t.latency_us = {{0, latency_us}, {latency_us, 0}};
  t.bandwidth_MBps = {{0, bandwidth_MBps}, {bandwidth_MBps, 0}};
  return t;
}

TEST(CommCostModel, PredictsEq7AndChoosesPerLink) {
  GradRange bucket{0, 1 << 20, {Matrix{0, 1024, 1024}}};  // 4 MiB
  Topology slow = two_ranks(12.5, 1000);                  // 100 Mbit/s, 1 ms
  Prediction none = predict(slow, {0, 1}, bucket, CodecSpec{}, {});
  EXPECT_NEAR(none.wire_s, (4 << 20) / 12.5e6, 1e-9);
  EXPECT_NEAR(none.latency_s, 2 * 1e-3, 1e-12);  // 2 (p - 1) steps
  EXPECT_EQ(none.compute_s, 0);
  Prediction fp16 = predict(slow, {0, 1}, bucket, parse_codec_spec("fp16"), {});
  EXPECT_NEAR(fp16.compute_s, 0.2e-9 * (1 << 20) * 2, 1e-12);
  EXPECT_LT(fp16.seconds, none.seconds);
  std::vector<Prediction> ranked = choose_codec(slow, {0, 1}, bucket, parse_codec_spec("auto"), {});
  ASSERT_EQ(ranked.size(), 5u);
  // At 1 ms, top-K's one all-gather (32 KB: 2.6 ms on the wire + 1 ms) beats PowerSGD's two all-reduces
  // (32 KB: 2.6 ms + 4 ms of latency); at 0.1 ms PowerSGD of rank 2 (16 KB: 1.3 + 0.4 ms) beats it.
  EXPECT_EQ(ranked[0].codec.name(), "topk:0.01");
  auto best = [&](const Topology& t, const char* spec) {
    return choose_codec(t, {0, 1}, bucket, parse_codec_spec(spec), {})[0].codec.name();
  };
  EXPECT_EQ(best(slow, "auto:topk:0.01,powersgd:2"), "topk:0.01");
  EXPECT_EQ(best(two_ranks(12.5, 100), "auto:topk:0.01,powersgd:2"), "powersgd:2");
  EXPECT_TRUE(std::is_sorted(ranked.begin() + 1, ranked.end(),
                             [](const Prediction& a, const Prediction& b) { return a.seconds < b.seconds; }));
  // Without matrices PowerSGD cannot help; top-K wins on the slow link.
  GradRange flat{0, 1 << 20, {}};
  EXPECT_EQ(choose_codec(slow, {0, 1}, flat, parse_codec_spec("auto"), {})[0].codec.name(), "topk:0.01");
  // On a fast link encoding costs more than it saves.
  Topology fast = two_ranks(20000, 0.3);
  EXPECT_EQ(
      choose_codec(fast, {0, 1}, flat, parse_codec_spec("auto:fp16,int8,topk:0.01"), {})[0].codec.name(),
      "none");
  // One rank: nothing on the wire.
  EXPECT_EQ(predict(slow, {0}, bucket, CodecSpec{}, {}).seconds, 0);
}

TEST(CommCostModel, HierarchicalGroupIsOneRankPerNode) {
  Topology t = two_ranks(100, 10);
  t.world = 4;
  t.ranks = {RankInfo{"a", 0, 1, {}, {}}, RankInfo{"a", 0, 1, {}, {}}, RankInfo{"b", 1, 1, {}, {}},
             RankInfo{"b", 1, 1, {}, {}}};
  EXPECT_EQ(codec_group(t, false), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(codec_group(t, true), (std::vector<int>{0, 2}));
}

TEST(CommTopology, JsonRoundTripAndNamedErrors) {
  // Read from "t.json", `json` is refused with `message`.
  auto expect_refused = [](const nlohmann::json& json, const char* message) {
    try {
      topology_from_json(json, "t.json");
      ADD_FAILURE() << "accepted " << json.dump();
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), message);
    }
  };
  Topology t = two_ranks(123.5, 4.25);
  Topology back = topology_from_json(topology_to_json(t), "t.json");
  EXPECT_EQ(back.world, 2);
  EXPECT_EQ(back.bandwidth_MBps, t.bandwidth_MBps);
  EXPECT_EQ(back.latency_us, t.latency_us);
  EXPECT_EQ(back.ranks[1].node, 1);
  EXPECT_EQ(back.ranks[0].codec_ns_per_float, t.ranks[0].codec_ns_per_float);
  t.ranks[1].cpus = {2, 3};
  EXPECT_EQ(topology_from_json(topology_to_json(t), "t.json").ranks[1].cpus, (std::vector<int>{2, 3}));
  t.ranks[1].sgemm_alone_gflops = 97.5;
  EXPECT_EQ(topology_from_json(topology_to_json(t), "t.json").ranks[1].sgemm_alone_gflops, 97.5);
  nlohmann::json older = topology_to_json(t);  // written before the probe recorded CPUs and SGEMM alone
  older["ranks"][1].erase("cpus");
  older["ranks"][1].erase("sgemm_alone_gflops");
  EXPECT_TRUE(topology_from_json(older, "t.json").ranks[1].cpus.empty());
  EXPECT_EQ(topology_from_json(older, "t.json").ranks[1].sgemm_alone_gflops, 0);
  older["ranks"][1]["cpus"] = {0, -1};
  expect_refused(older, "t.json: field 'ranks[1].cpus' must be an array of CPU numbers >= 0");
  // A model timed alone and at once: what it was and each rank's two times.
  t.micro_step_of = {{"model", {{"layers", 2}}}, {"micro_batch", 4}};
  t.ranks[0].micro_step_alone_ms = t.ranks[1].micro_step_alone_ms = 50;
  t.ranks[1].micro_step_at_once_ms = 55.5;
  back = topology_from_json(topology_to_json(t), "t.json");
  EXPECT_EQ(back.micro_step_of, t.micro_step_of);
  EXPECT_EQ(back.ranks[1].micro_step_alone_ms, 50);
  EXPECT_EQ(back.ranks[1].micro_step_at_once_ms, 55.5);
  nlohmann::json timed = topology_to_json(t);
  timed["ranks"][1].erase("micro_step_at_once_ms");
  expect_refused(timed, "t.json: field 'ranks[1].micro_step_at_once_ms' must be a number >= 0");
  timed = topology_to_json(t);
  timed["micro_step_of"].erase("micro_batch");
  expect_refused(timed,
                 "t.json: field 'micro_step_of' must be an object with the timed model's \"model\" and its "
                 "\"micro_batch\"");
  t.micro_step_of = nullptr;
  EXPECT_FALSE(topology_to_json(t).contains("micro_step_of"));
  EXPECT_FALSE(topology_to_json(t)["ranks"][0].contains("micro_step_alone_ms"));
  nlohmann::json broken = topology_to_json(t);
  broken["bandwidth_MBps"][0][1] = 0;
  expect_refused(broken, "t.json: field 'bandwidth_MBps[0][1]' must be positive off the diagonal");
  broken = topology_to_json(t);
  broken["latency_us"].erase(1);
  EXPECT_THROW(topology_from_json(broken, "t.json"), Error);
}

TEST(CommGradSync, ASingleProcessLeavesGradientsAsTheyAre) {
  std::unique_ptr<Context> opened = Context::open();
  Context& context = *opened;
  ASSERT_FALSE(context.uses_mpi());
  ASSERT_EQ(context.world(), 1);
  std::vector<float> grads = values(1000, 5, 1.0f), original = grads;
  GradSyncOptions options;
  options.codec = parse_codec_spec("topk:0.01");
  GradSync sync(context, grads.data(), grads.size(), {GradRange{0, 600, {}}, GradRange{600, 400, {}}},
                options);
  sync.bucket_ready(1);
  EXPECT_THROW(sync.bucket_ready(1), Error);
  sync.finish();
  EXPECT_EQ(grads, original);
  EXPECT_EQ(sync.stats().bytes_sent, 0u);
  EXPECT_EQ(sync.stats().comm_hidden_fraction, 1.0);
  SyncState state = sync.save_state();
  EXPECT_EQ(state.steps, 1);
  EXPECT_EQ(state.buckets, (std::vector<std::vector<float>>{{}, {}}));
  EXPECT_THROW(sync.load_state(SyncState{1, {{1.0f}, {}}}), Error);
  // ZeRO-1: each bucket in a part per rank; rank 1 owns the middle of both.
  const ShardLayout shards = shard_layout({GradRange{0, 10, {}}, GradRange{10, 7, {}}}, 3);
  EXPECT_EQ(shards.parts, (std::vector<std::vector<size_t>>{{0, 4, 8, 10}, {10, 13, 16, 17}}));
  ASSERT_EQ(shards.owned(1).size(), 2u);
  EXPECT_EQ(shards.owned(1)[0].offset, 4u);
  EXPECT_EQ(shards.owned(1)[1].offset, 13u);
  EXPECT_EQ(shards.owned(1)[1].count, 3u);
  EXPECT_EQ(shards.count(2), 3u);
  EXPECT_THROW(GradSync(context, grads.data(), 100, {GradRange{50, 60, {}}}, options), Error);
}

TEST(CommFlags, HelpShowsDefaultsAndFlagsBecomeOptions) {
  CLI::App app{"test"};
  app.option_defaults()->always_capture_default();  // as the triad root command does
  CommOptions flags;
  cli::add_options(app, CommOptions::options(), flags);
  std::string help = app.help();
  for (const char* expected :
       {"--grad-compression CODEC=none", "--bucket-mb FLOAT:NONNEGATIVE=4",
        "--comm-timeout FLOAT:POSITIVE=300", "--comm-progress TEXT:{thread,poll}=thread",
        "--poll-us INT:NONNEGATIVE=50", "--int8-chunk", "=256", "--topk-warmup", "--int8-stochastic",
        "--hierarchical", "--topology", "--ranks-per-node"}) {
    EXPECT_NE(help.find(expected), std::string::npos) << expected << "\n" << help;
  }
  app.parse("--grad-compression topk:0.05 --bucket-mb 2 --hierarchical --comm-progress poll --topk-warmup 9",
            false);
  GradSyncOptions options = grad_sync_options(flags, 7);
  EXPECT_EQ(options.codec.name(), "topk:0.05");
  EXPECT_EQ(options.progress, Progress::kPoll);
  EXPECT_TRUE(options.hierarchical);
  EXPECT_EQ(options.codec_options.topk_warmup_steps, 9);
  EXPECT_EQ(options.codec_options.seed, 7u);
  EXPECT_EQ(flags.bucket_mb, 2);
  flags.grad_compression = "zip";
  try {
    grad_sync_options(flags, 7);
    FAIL() << "accepted an unknown codec";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  }
}

}  // namespace
}  // namespace triad::comm
