// GradSync across real MPI processes: ZeRO-1's shards, hierarchical averaging, auto's choice and the
// overlap of communication with compute. Linked into comm_collectives_mpitest, which runs it.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "comm_mpitest_util.h"
#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/comm/kernels.h"
#include "triad/comm/topology.h"
#include "triad/core/error.h"

namespace triad::comm {
namespace {

// Calls f(i) for every float rank `rank` owns under ZeRO-1.
template <typename F>
void for_owned(const ShardLayout& shards, int rank, F f) {
  for (const ShardLayout::Range& part : shards.owned(rank))
    for (size_t i = part.offset; i < part.offset + part.count; ++i) f(i);
}

TEST(CommZero1, ReduceScatterAndAllGatherEqualAFullAllReduce) {
  const size_t n = 9001;
  std::vector<float> grads = input(ctx().rank(), n, 11);
  GradSyncOptions options = options_for("none");
  options.zero1 = true;
  std::vector<GradRange> buckets = even_buckets(n, 2000);
  GradSync sync(ctx(), grads.data(), n, buckets, options);
  step(sync, buckets.size());
  const ShardLayout& shards = sync.shards();
  std::vector<float> reference = mean_of_inputs(n, 11);
  int me = ctx().rank();
  for_owned(shards, me, [&](size_t i) { ASSERT_NEAR(grads[i], reference[i], 1e-6f) << "at " << i; });
  // Every bucket is split among all ranks, a part each (so that it travels every way).
  for (size_t b = 0; b < buckets.size(); ++b) {
    const std::vector<size_t>& at = shards.parts[b];
    ASSERT_EQ(at.size(), static_cast<size_t>(ctx().world()) + 1);
    EXPECT_EQ(at.front(), buckets[b].offset);
    EXPECT_EQ(at.back(), buckets[b].end());
    for (int r = 0; r < ctx().world(); ++r)
      EXPECT_LE(at[r + 1] - at[r], buckets[b].count / ctx().world() + 1);
  }
  // "Optimizer": each rank updates only its shard; the all-gather gives everyone everything.
  std::vector<float> params(n, -1.0f);
  for_owned(shards, me, [&](size_t i) { params[i] = 2 * grads[i]; });
  uint64_t bytes = all_gather_shards(ctx(), params.data(), shards);
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(params[i], 2 * reference[i], 2e-6f) << "at " << i;
  uint64_t world = ctx().world();
  EXPECT_EQ(bytes, (world - 1) * shards.count(me) * 4);
  uint64_t expected = 0;
  for (const GradRange& b : buckets) expected += (world - 1) * b.count * 4 / world;
  EXPECT_EQ(sync.stats().bytes_sent, expected);
}

// ZeRO-1 with fp16 / int8: each owner receives every rank's encoding of its part and sums them in fp32, so
// its shard is the mean within one rounding of each input (the mean itself is not rounded), and each rank
// sends (p - 1)/p of its encoded bucket instead of the floats.
TEST(CommZero1, QuantizedShardsAreTheMeanWithinOneRoundingOfEachInput) {
  const size_t n = 9001, chunk = 64;
  const std::vector<GradRange> buckets = even_buckets(n, 2000);
  std::vector<std::vector<float>> inputs;
  for (int r = 0; r < ctx().world(); ++r) inputs.push_back(input(r, n, 15));
  const std::vector<float> reference = mean_of_inputs(n, 15);
  const uint64_t world = ctx().world();
  for (const std::string codec : {"fp16", "int8"}) {
    SCOPED_TRACE(codec);
    const bool int8 = codec == "int8";
    std::vector<float> grads = inputs[ctx().rank()];
    GradSyncOptions options = options_for(codec);
    options.zero1 = true;
    options.codec_options.int8_chunk = chunk;
    GradSync sync(ctx(), grads.data(), n, buckets, options);
    step(sync, buckets.size());
    const ShardLayout& shards = sync.shards();
    const int me = ctx().rank();
    auto encoded = [&](size_t count) { return ((int8 ? int8_bytes(count, chunk) : 2 * count) + 7) / 8 * 8; };
    uint64_t expected_bytes = 0;
    for (size_t b = 0; b < buckets.size(); ++b) {
      const std::vector<size_t>& at = shards.parts[b];
      uint64_t send = 0;  // every owner's part of b, encoded
      for (int r = 0; r < ctx().world(); ++r) {
        if (at[r] < at[r + 1]) send += encoded(at[r + 1] - at[r]);
      }
      expected_bytes += (world - 1) * send / world;
      // This rank's part of b; int8 chunks start at its first float.
      const size_t lo = at[me], hi = at[me + 1];
      for (size_t i = lo; i < hi; ++i) {
        double bound = 0;
        if (int8) {
          size_t c0 = lo + (i - lo) / chunk * chunk, c1 = std::min(hi, c0 + chunk);
          for (const std::vector<float>& x : inputs) {
            double max_abs = 0;
            for (size_t j = c0; j < c1; ++j) max_abs = std::max(max_abs, double(std::fabs(x[j])));
            bound += 0.5 * max_abs / 127;
          }
        } else {
          for (const std::vector<float>& x : inputs) bound += std::ldexp(std::fabs(x[i]), -11);
        }
        bound = bound / world * 1.001 + 1e-7;
        ASSERT_LE(std::fabs(grads[i] - reference[i]), bound) << "at " << i;
      }
    }
    EXPECT_EQ(sync.stats().codec, codec);
    EXPECT_EQ(sync.stats().bytes_sent, expected_bytes);
  }
  // top-K and PowerSGD keep residuals of whole buckets: not with ZeRO-1.
  GradSyncOptions topk = options_for("topk:0.01");
  topk.zero1 = true;
  std::vector<float> grads(n);
  EXPECT_THROW(GradSync(ctx(), grads.data(), n, buckets, topk), Error);
}

// ZeRO-1 with fp16 / int8: the parameter all-gather carries each shard's update encoded, and every rank,
// the owner included, adds the decoded update to the shard as it was: all ranks end with the same bits,
// within one rounding of the update of the exact parameters.
TEST(CommZero1, EncodedUpdatesKeepEveryRanksParametersIdentical) {
  const size_t n = 9001, chunk = 64;
  const uint64_t world = ctx().world();
  const int me = ctx().rank();
  for (const std::string codec : {"fp16", "int8"}) {
    SCOPED_TRACE(codec);
    const bool int8 = codec == "int8";
    std::vector<float> grads(n, 0.0f);
    GradSyncOptions options = options_for(codec);
    options.zero1 = true;
    options.codec_options.int8_chunk = chunk;
    GradSync sync(ctx(), grads.data(), n, even_buckets(n, 2000), options);
    const ShardLayout& shards = sync.shards();
    // The same parameters everywhere; each owner moves its shard by updates of mixed scales (0.01 to 1e-5).
    std::vector<float> before = input(99, n, 16, 1.0f), update = input(98, n, 17, 0.01f);
    for (size_t i = 0; i < n; i += 3) update[i] *= 1e-3f;
    std::vector<float> params = before;
    sync.before_update(params.data());
    for_owned(shards, me, [&](size_t i) { params[i] += update[i]; });
    uint64_t bytes = sync.gather_params(params.data());

    std::vector<float> rank0 = params;
    MPI_Bcast(rank0.data(), n, MPI_FLOAT, 0, ctx().comm());
    ASSERT_EQ(rank0, params) << "the ranks' parameters differ";
    const auto encoded = [&](size_t count) {
      return ((int8 ? int8_bytes(count, chunk) : 2 * count) + 7) / 8 * 8;
    };
    size_t encoded_here = 0;  // each part of this rank's encoded on its own
    for (const ShardLayout::Range& part : shards.owned(me)) encoded_here += encoded(part.count);
    for (int r = 0; r < ctx().world(); ++r) {
      for (const ShardLayout::Range& part : shards.owned(r)) {
        const size_t lo = part.offset, hi = lo + part.count;
        for (size_t i = lo; i < hi; ++i) {
          // What the owner computed (before + update, in float) is the exact result; one rounding of the
          // update away at most (fp16: half an ulp of it; int8: half a step of its chunk's scale).
          const float exact = before[i] + update[i];
          double bound = std::ldexp(std::fabs(update[i]), -11) + std::ldexp(1.0, -25);  // fp16 subnormals
          if (int8) {
            size_t c0 = lo + (i - lo) / chunk * chunk, c1 = std::min(hi, c0 + chunk);
            double max_abs = 0;
            for (size_t j = c0; j < c1; ++j) max_abs = std::max(max_abs, double(std::fabs(update[j])));
            bound = 0.5 * max_abs / 127;
          }
          bound = bound * 1.001 + std::ldexp(std::fabs(before[i]), -23);  // + the float additions' rounding
          ASSERT_LE(std::fabs(params[i] - exact), bound) << "at " << i;
        }
      }
    }
    EXPECT_EQ(bytes, (world - 1) * encoded_here);
  }
}

TEST(CommHierarchical, EqualsFlat) {
  const size_t n = 6007;
  std::vector<GradRange> buckets = even_buckets(n, 2500);
  std::vector<float> flat = input(ctx().rank(), n, 12), tree = flat;
  GradSync flat_sync(ctx(), flat.data(), n, buckets, options_for("none"));
  GradSyncOptions options = options_for("none");
  options.hierarchical = true;
  GradSync tree_sync(ctx(), tree.data(), n, buckets, options);
  step(flat_sync, buckets.size());
  step(tree_sync, buckets.size());
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(tree[i], flat[i], 1e-6f) << "at " << i;
  // Every rank ends with the same bits.
  std::vector<float> rank0 = tree;
  MPI_Bcast(rank0.data(), n, MPI_FLOAT, 0, ctx().comm());
  EXPECT_EQ(rank0, tree);
}

TEST(CommHierarchical, CodecAppliesAmongLeadersOnly) {
  const size_t n = 3000;
  std::vector<float> grads = input(ctx().rank(), n, 13, 10.0f);
  GradSyncOptions options = options_for("fp16");
  options.hierarchical = true;
  GradSync sync(ctx(), grads.data(), n, even_buckets(n, n), options);
  step(sync, 1);
  std::vector<float> reference = mean_of_inputs(n, 13, 10.0f);
  double u = std::ldexp(1.0, -11);
  for (size_t i = 0; i < n; ++i) {
    // Node sums (scaled) are rounded once, their mean once more.
    double bound = u * 10.0 * ctx().node_size() * ctx().node_count() / ctx().world() * 2 + 1e-5;
    ASSERT_NEAR(grads[i], reference[i], bound) << "at " << i;
  }
  bool leader = ctx().node_rank() == 0;
  EXPECT_EQ(sync.stats().codec, "fp16");
  // Non-leaders only reduce and receive the broadcast.
  uint64_t node_bytes = 2 * (ctx().node_size() - 1) * n * 4 / ctx().node_size();
  if (leader) {
    EXPECT_GT(sync.stats().bytes_sent, node_bytes);
  } else {
    EXPECT_EQ(sync.stats().bytes_sent, node_bytes);
  }
}

// This job's ranks and nodes with the same latency and bandwidth between every pair, and codec speeds.
Topology uniform_links(double latency_us, double bandwidth_MBps) {
  Topology t;
  t.world = ctx().world();
  for (int r = 0; r < t.world; ++r) {
    t.ranks.push_back(RankInfo{
        "host", r / ctx().node_size(), 50, {{"fp16", 0.2}, {"int8", 0.7}, {"topk", 1}, {"powersgd", 1}}, {}});
  }
  t.latency_us.assign(t.world, std::vector<double>(t.world, latency_us));
  t.bandwidth_MBps.assign(t.world, std::vector<double>(t.world, bandwidth_MBps));
  return t;
}

TEST(CommAuto, PicksCompressionOnSlowLinksAndAllRanksAgree) {
  Topology slow = uniform_links(1000, 12.5);  // 1 ms, 100 Mbit/s
  const size_t n = 1 << 18;                   // 1 MiB
  std::vector<float> grads = input(ctx().rank(), n, 14);
  GradSyncOptions options = options_for("auto:fp16,int8,topk:0.01");
  options.topology = slow;
  std::vector<GradRange> buckets = even_buckets(n, n / 4);
  testing::internal::CaptureStderr();
  GradSync sync(ctx(), grads.data(), n, buckets, options);
  const std::string log = testing::internal::GetCapturedStderr();
  if (ctx().rank() == 0) {
    EXPECT_NE(log.find("-> topk:0.01"), std::string::npos) << log;
    EXPECT_NE(log.find("auto chose a codec that changes convergence"), std::string::npos) << log;
  }
  for (const std::string& codec : names(sync.bucket_codecs())) EXPECT_EQ(codec, "topk:0.01");
  EXPECT_EQ(sync.stats().codec, "auto(topk:0.01x4)");
  step(sync, buckets.size());
  EXPECT_EQ(sync.stats().bytes_sent,
            4 * (ctx().world() - 1) * topk_block_bytes(n / 4, topk_count(n / 4, 0.01, 0, 0)));

  // On fast links nothing beats sending raw.
  options.topology = uniform_links(0.3, 1e5);
  testing::internal::CaptureStderr();
  GradSync fast_sync(ctx(), grads.data(), n, buckets, options);
  EXPECT_EQ(testing::internal::GetCapturedStderr().find("changes convergence"), std::string::npos);
  for (const std::string& codec : names(fast_sync.bucket_codecs())) EXPECT_EQ(codec, "none");
}

// With --zero 1, auto keeps to none, fp16 and int8 and picks one of them for every bucket (the parameter
// all-gather encodes the whole shard one way), and the all-gather then carries updates so encoded.
TEST(CommAuto, WithZero1PicksOneLosslessCodecForAllBuckets) {
  const Topology slow = uniform_links(20, 12.5);
  const size_t n = 1 << 18;
  const std::vector<GradRange> buckets = even_buckets(n, n / 4);
  std::vector<float> grads = input(ctx().rank(), n, 18);
  GradSyncOptions options = options_for("auto");  // fp16, int8, topk:0.01, powersgd:4: the last two dropped
  options.zero1 = true;
  options.topology = slow;
  testing::internal::CaptureStderr();
  GradSync sync(ctx(), grads.data(), n, buckets, options);
  const std::string log = testing::internal::GetCapturedStderr();
  if (ctx().rank() == 0) {
    EXPECT_NE(log.find("ZeRO-1: one codec for all 4 buckets"), std::string::npos) << log;
  }
  for (const std::string& codec : names(sync.bucket_codecs())) EXPECT_EQ(codec, "int8");
  step(sync, buckets.size());
  const std::vector<float> reference = mean_of_inputs(n, 18);
  const ShardLayout& shards = sync.shards();
  const int me = ctx().rank();
  for_owned(shards, me, [&](size_t i) {
    ASSERT_NEAR(grads[i], reference[i], 0.01f) << "at " << i;  // int8 of inputs in [-1, 1]: within 1/127
  });
  // The parameter all-gather is int8 too.
  std::vector<float> params(n, 0.5f);
  sync.before_update(params.data());
  for_owned(shards, me, [&](size_t i) { params[i] += 0.001f; });
  const uint64_t bytes = sync.gather_params(params.data());
  uint64_t encoded = 0;  // (p - 1) times each of this rank's parts in int8, 256-value chunks
  for (const ShardLayout::Range& part : shards.owned(me))
    encoded += (int8_bytes(part.count, 256) + 7) / 8 * 8;
  EXPECT_EQ(bytes, (ctx().world() - 1) * encoded);
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(params[i], 0.501f, 1e-5f) << "at " << i;

  // Only top-K or PowerSGD to choose from: refused, as top-K alone is.
  GradSyncOptions lossy = options_for("auto:topk:0.01,powersgd:4");
  lossy.zero1 = true;
  lossy.topology = slow;
  EXPECT_THROW(GradSync(ctx(), grads.data(), n, buckets, lossy), Error);
}

TEST(CommOverlap, ThreadProgressHidesCommunicationBehindCompute) {
  const size_t n = 1 << 20;  // 4 MiB in 4 buckets
  std::vector<float> grads = input(ctx().rank(), n, 15);
  std::vector<GradRange> buckets = even_buckets(n, n / 4);
  GradSync sync(ctx(), grads.data(), n, buckets, options_for("none", Progress::kThread));
  for (size_t b = 0; b < buckets.size(); ++b) {
    sync.bucket_ready(static_cast<int>(b));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the rest of the backward
  }
  sync.finish();
  const StepStats& stats = sync.stats();
  EXPECT_GT(stats.comm_ms, 0);
  EXPECT_LT(stats.wait_ms, stats.comm_ms);
  EXPECT_GT(stats.comm_hidden_fraction, 0.5) << "comm " << stats.comm_ms << " ms, waited " << stats.wait_ms;
}

}  // namespace
}  // namespace triad::comm
