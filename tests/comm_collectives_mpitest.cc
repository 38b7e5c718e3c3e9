// Gradient aggregation across real MPI processes. CTest runs this binary as
//   mpirun -np 2 comm_collectives_mpitest --ranks-per-node=1   (two one-rank "nodes")
//   mpirun -np 4 comm_collectives_mpitest --ranks-per-node=2   (two nodes of two)
// This file: each codec's averages, error feedback and saved state, and main(). comm_grad_sync_mpitest.cc,
// in the same binary: ZeRO-1, hierarchical averaging, auto and overlap. Both use comm_mpitest_util.h.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "comm_mpitest_util.h"
#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/comm/kernels.h"
#include "triad/comm/pieces.h"
#include "triad/core/error.h"

namespace triad::comm {
namespace {

TEST(CommContext, KnowsRanksAndNodes) {
  Context& c = ctx();
  EXPECT_TRUE(c.uses_mpi());
  EXPECT_GE(c.world(), 2);
  EXPECT_TRUE(c.thread_multiple());
  EXPECT_EQ(c.node_count() * c.node_size(), c.world());  // the test runs equal nodes
  EXPECT_EQ(c.leader_comm() != MPI_COMM_NULL, c.node_rank() == 0);
}

TEST(CommNone, EqualsThePlainMeanInBothProgressModes) {
  const size_t n = 10007;
  for (Progress progress : {Progress::kThread, Progress::kPoll}) {
    std::vector<float> grads = input(ctx().rank(), n, 1);
    std::vector<float> plain = grads;
    MPI_Allreduce(MPI_IN_PLACE, plain.data(), n, MPI_FLOAT, MPI_SUM, ctx().comm());
    for (float& v : plain) v *= 1.0f / ctx().world();
    std::vector<GradRange> buckets = even_buckets(n, 1000);
    GradSync sync(ctx(), grads.data(), n, buckets, options_for("none", progress));
    step(sync, buckets.size());
    std::vector<float> reference = mean_of_inputs(n, 1);
    for (size_t i = 0; i < n; ++i) {
      // Two ranks add in one order only; more may associate differently from MPI_Allreduce.
      if (ctx().world() == 2) {
        ASSERT_EQ(grads[i], plain[i]) << "at " << i;
      }
      ASSERT_NEAR(grads[i], plain[i], 1e-6f) << "at " << i;
      ASSERT_NEAR(grads[i], reference[i], 1e-6f) << "at " << i;
    }
    std::vector<float> rank0 = grads;  // and every rank holds the same bits
    MPI_Bcast(rank0.data(), n, MPI_FLOAT, 0, ctx().comm());
    ASSERT_EQ(rank0, grads);
    EXPECT_EQ(sync.stats().codec, "none");
    uint64_t world = ctx().world(), expected = 0;
    for (const GradRange& b : buckets) expected += 2 * (world - 1) * b.count * 4 / world;
    EXPECT_EQ(sync.stats().bytes_sent, expected);
  }
}

TEST(CommNone, RepeatedStepsWithBucketsInAnyOrder) {
  const size_t n = 5000;
  std::vector<GradRange> buckets = even_buckets(n, 700);
  std::vector<float> grads(n);
  GradSync sync(ctx(), grads.data(), n, buckets, options_for("none"));
  for (int s = 0; s < 5; ++s) {
    refill(grads, input(ctx().rank(), n, 100 + s));
    // Ranks hand buckets over in different orders; per-bucket communicators keep them apart.
    for (size_t k = 0; k < buckets.size(); ++k) {
      size_t b = ctx().rank() % 2 ? buckets.size() - 1 - k : k;
      sync.bucket_ready(static_cast<int>(b));
    }
    sync.finish();
    std::vector<float> reference = mean_of_inputs(n, 100 + s);
    for (size_t i = 0; i < n; ++i) ASSERT_NEAR(grads[i], reference[i], 1e-6f) << "step " << s << " at " << i;
  }
}

TEST(CommFp16, WithinHalfPrecisionBound) {
  const size_t n = 4099;
  std::vector<float> grads = input(ctx().rank(), n, 2, 10.0f);
  std::vector<GradRange> buckets = even_buckets(n, 1500);
  GradSync sync(ctx(), grads.data(), n, buckets, options_for("fp16"));
  step(sync, buckets.size());
  std::vector<float> reference = mean_of_inputs(n, 2, 10.0f);
  const double u = std::ldexp(1.0, -11);  // relative rounding error of binary16
  std::vector<double> inputs(n, 0.0);
  for (int r = 0; r < ctx().world(); ++r) {
    std::vector<float> x = input(r, n, 2, 10.0f);
    for (size_t i = 0; i < n; ++i) inputs[i] += std::fabs(x[i]);
  }
  for (size_t i = 0; i < n; ++i) {
    // Each input is rounded once, their mean once more (and fp16 subnormals add at most 2^-25).
    double bound = u * inputs[i] / ctx().world() + u * std::fabs(reference[i]) * 1.001 + 1e-6;
    ASSERT_LE(std::fabs(grads[i] - reference[i]), bound) << "at " << i;
  }
  EXPECT_EQ(sync.stats().codec, "fp16");
}

// The int8 error bound of element i: each rank's chunk scale / 2 (a whole scale when stochastic) averaged,
// plus the rounding of the mean. Buckets and shards start at multiples of the chunk, so chunks do too.
double int8_bound(size_t i, size_t n, size_t chunk, const std::vector<std::vector<float>>& inputs,
                  const std::vector<float>& reference, double rounding) {
  size_t begin = i / chunk * chunk, end = std::min(n, begin + chunk);
  double scales = 0, mean_max = 0;
  for (const std::vector<float>& x : inputs) {
    double max_abs = 0;
    for (size_t j = begin; j < end; ++j) max_abs = std::max(max_abs, double(std::fabs(x[j])));
    scales += max_abs / 127;
  }
  for (size_t j = begin; j < end; ++j) mean_max = std::max(mean_max, double(std::fabs(reference[j])));
  double first = rounding * scales / ctx().world();
  return (first + rounding * (mean_max + first) / 127) * 1.001 + 1e-7;
}

TEST(CommInt8, WithinScaleBoundNearestAndStochastic) {
  const size_t n = 3001, chunk = 64;
  for (bool stochastic : {false, true}) {
    std::vector<float> grads = input(ctx().rank(), n, 3);
    GradSyncOptions options = options_for("int8");
    options.codec_options.int8_chunk = chunk;
    options.codec_options.int8_stochastic = stochastic;
    std::vector<GradRange> buckets = even_buckets(n, 1024);
    GradSync sync(ctx(), grads.data(), n, buckets, options);
    step(sync, buckets.size());
    std::vector<float> reference = mean_of_inputs(n, 3);
    std::vector<std::vector<float>> inputs;
    for (int r = 0; r < ctx().world(); ++r) inputs.push_back(input(r, n, 3));
    for (size_t i = 0; i < n; ++i) {
      double bound = int8_bound(i, n, chunk, inputs, reference, stochastic ? 1.0 : 0.5);
      ASSERT_LE(std::fabs(grads[i] - reference[i]), bound)
          << "at " << i << (stochastic ? " (stochastic)" : "");
    }
    EXPECT_EQ(sync.stats().codec, "int8");
  }
}

TEST(CommInt8, StochasticRoundingIsUnbiased) {
  // Averaged over many steps, stochastic rounding errors cancel; nearest rounding's would not shrink.
  const size_t n = 256;
  GradSyncOptions options = options_for("int8");
  options.codec_options.int8_chunk = 256;
  options.codec_options.int8_stochastic = true;
  std::vector<float> grads(n), sum(n, 0.0f);
  std::vector<GradRange> buckets = even_buckets(n, n);
  GradSync sync(ctx(), grads.data(), n, buckets, options);
  const int steps = 200;
  for (int s = 0; s < steps; ++s) {
    refill(grads, input(ctx().rank(), n, 4));
    step(sync, buckets.size());
    for (size_t i = 0; i < n; ++i) sum[i] += grads[i];
  }
  std::vector<float> reference = mean_of_inputs(n, 4);
  double mean_error = 0, scale = 1.0 / 127;  // inputs lie in [-1, 1)
  for (size_t i = 0; i < n; ++i) mean_error += std::fabs(sum[i] / steps - reference[i]);
  mean_error /= n;
  // One step's error is up to a whole scale; 200 unbiased steps average it down by about sqrt(200).
  EXPECT_LT(mean_error, 0.2 * scale);
}

// x rounded to fp16, top-K's wire format for values.
float fp16_round(float x) {
  uint16_t half;
  fp16_encode(&x, 1, &half);
  float back;
  fp16_decode(&half, 1, &back);
  return back;
}

// What top-K did to one entry holding `accumulated`: either kept all of it in the residual, or sent its fp16
// rounding and kept the rounding error. Returns whether it was sent.
bool check_topk_entry(float accumulated, float residual, size_t i) {
  if (residual == accumulated) return false;
  const float sent = accumulated - residual;
  EXPECT_EQ(sent, fp16_round(accumulated)) << "entry " << i << " sent something other than its fp16 value";
  EXPECT_EQ(residual + sent, accumulated) << "entry " << i << ": the residual lost part of the rounding";
  return true;
}

TEST(CommTopK, ErrorFeedbackIsExactAndTheMeanIsOfWhatWasSent) {
  const size_t n = 2000;
  const double ratio = 0.05;
  const size_t k = topk_count(n, ratio, 0, 0);
  std::vector<float> g = input(ctx().rank(), n, 5);
  std::vector<float> grads = g;
  std::vector<GradRange> buckets = even_buckets(n, n);
  GradSync sync(ctx(), grads.data(), n, buckets, options_for("topk:0.05"));
  step(sync, 1);

  std::vector<float> residual = sync.save_state().buckets[0];
  std::vector<float> sent(n, 0.0f);
  size_t nonzero = 0;
  float smallest_sent = INFINITY, largest_kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (check_topk_entry(g[i], residual[i], i)) {
      sent[i] = g[i] - residual[i];
      ++nonzero;
      smallest_sent = std::min(smallest_sent, std::fabs(g[i]));
    } else {
      largest_kept = std::max(largest_kept, std::fabs(g[i]));
    }
  }
  EXPECT_EQ(nonzero, k);
  EXPECT_GE(smallest_sent, largest_kept);  // the k largest magnitudes went

  std::vector<float> all_sent(n * ctx().world());
  MPI_Allgather(sent.data(), n, MPI_FLOAT, all_sent.data(), n, MPI_FLOAT, ctx().comm());
  for (size_t i = 0; i < n; ++i) {
    float expected = 0;
    for (int r = 0; r < ctx().world(); ++r) expected += all_sent[r * n + i];
    expected *= 1.0f / ctx().world();
    ASSERT_EQ(grads[i], expected) << "at " << i;
  }

  // Second step: the residual joins the new gradient, and again residual + sent = what was there.
  std::vector<float> g2 = input(ctx().rank(), n, 6);
  refill(grads, g2);
  step(sync, 1);
  std::vector<float> residual2 = sync.save_state().buckets[0];
  size_t nonzero2 = 0;
  for (size_t i = 0; i < n; ++i) nonzero2 += check_topk_entry(residual[i] + g2[i], residual2[i], i);
  EXPECT_EQ(nonzero2, k);
  // Elias-Fano indices (l = floor(log2(2000 / 100)) = 4 low bits each, then (1999 >> 4) + 100 high bits:
  // 624 bits, 78 bytes) and 100 fp16 values.
  EXPECT_EQ(sync.stats().bytes_sent, (ctx().world() - 1) * (78 + 2 * k));
}

TEST(CommTopK, WarmupSendsMoreEarly) {
  EXPECT_EQ(topk_count(10000, 0.01, 0, 100), 2500u);  // DGC starts at 25 %
  EXPECT_EQ(topk_count(10000, 0.01, 50, 100), 500u);  // halfway, geometrically: 25 % * (1/25)^0.5
  EXPECT_EQ(topk_count(10000, 0.01, 100, 100), 100u);
  EXPECT_EQ(topk_count(10000, 0.01, 5, 0), 100u);
  EXPECT_EQ(topk_count(10, 0.001, 0, 0), 1u);
  const size_t n = 4000;
  std::vector<float> grads = input(ctx().rank(), n, 7);
  GradSyncOptions options = options_for("topk:0.01");
  options.codec_options.topk_warmup_steps = 10;
  GradSync sync(ctx(), grads.data(), n, even_buckets(n, n), options);
  step(sync, 1);
  // 1000 indices of 4000: 2 low bits each, (3999 >> 2) + 1000 high bits, 3999 bits in 500 bytes.
  EXPECT_EQ(sync.stats().bytes_sent, (ctx().world() - 1) * (500 + 2 * 1000u));
}

// A rows x cols matrix of rank `rank` (sum of outer products), as a flat row-major vector.
std::vector<float> low_rank(size_t rows, size_t cols, int rank, uint64_t seed) {
  std::vector<float> m(rows * cols, 0.0f);
  for (int k = 0; k < rank; ++k) {
    std::vector<float> a = input(100 + k, rows, seed), b = input(200 + k, cols, seed);
    for (size_t i = 0; i < rows; ++i) {
      for (size_t j = 0; j < cols; ++j) m[i * cols + j] += a[i] * b[j];
    }
  }
  return m;
}

TEST(CommPowerSgd, RecoversALowRankMeanAndSendsVectorsUncompressed) {
  const size_t rows = 64, cols = 48, bias = 37;
  const size_t n = bias + rows * cols;
  // Bucket: a bias vector (sent raw), then a matrix. Each rank's matrix is L + noise_r with the noise
  // cancelling in the mean, so the mean L has rank 2 and PowerSGD of rank 2 must recover it.
  std::vector<float> l = low_rank(rows, cols, 2, 8);
  std::vector<float> noise = input(0, rows * cols, 9, 0.5f);
  int r = ctx().rank();
  float sign = ctx().world() % 2 == 0 ? (r % 2 ? -1.0f : 1.0f) : 0.0f;
  std::vector<float> grads = input(r, bias, 10);
  for (size_t i = 0; i < rows * cols; ++i) grads.push_back(l[i] + sign * noise[i]);
  std::vector<float> local = grads;
  GradRange bucket{0, n, {Matrix{bias, rows, cols}}};
  GradSync sync(ctx(), grads.data(), n, {bucket}, options_for("powersgd:2"));
  step(sync, 1);
  std::vector<float> bias_mean = mean_of_inputs(bias, 10);
  for (size_t i = 0; i < bias; ++i) ASSERT_NEAR(grads[i], bias_mean[i], 1e-6f) << "bias " << i;
  double error = 0, norm = 0;
  for (size_t i = 0; i < rows * cols; ++i) {
    error += std::pow(grads[bias + i] - l[i], 2);
    norm += std::pow(l[i], 2);
  }
  EXPECT_LT(std::sqrt(error / norm), 1e-4);
  // Error feedback keeps what the approximation missed of this rank's own matrix.
  std::vector<float> state = sync.save_state().buckets[0];
  ASSERT_EQ(state.size(), n + cols * 2);
  for (size_t i = 0; i < rows * cols; ++i) {
    ASSERT_NEAR(state[bias + i], local[bias + i] - grads[bias + i], 1e-5f) << "residual " << i;
  }
  uint64_t world = ctx().world();
  EXPECT_EQ(sync.stats().bytes_sent,
            2 * (world - 1) * (4 * (bias + rows * 2)) / world + 2 * (world - 1) * (4 * cols * 2) / world);
}

// Runs `steps` steps of `codec` from `state`, returning the last gradients and the state after.
std::pair<std::vector<float>, SyncState> run_steps(const std::string& codec, const SyncState* state,
                                                   int first_step, int steps) {
  const size_t rows = 40, cols = 30, n = 100 + rows * cols;
  GradRange bucket{0, n, {Matrix{100, rows, cols}}};
  std::vector<float> grads(n);
  GradSyncOptions options = options_for(codec);
  options.codec_options.topk_warmup_steps = 4;
  GradSync sync(ctx(), grads.data(), n, {bucket}, options);
  if (state) sync.load_state(*state);
  for (int s = first_step; s < first_step + steps; ++s) {
    refill(grads, input(ctx().rank(), n, 20 + s));
    step(sync, 1);
  }
  return {grads, sync.save_state()};
}

TEST(CommState, SaveAndLoadResumeBitExactly) {
  for (const std::string codec : {"topk:0.02", "powersgd:3", "int8"}) {
    auto [straight, straight_state] = run_steps(codec, nullptr, 0, 4);
    auto [half, half_state] = run_steps(codec, nullptr, 0, 2);
    EXPECT_EQ(half_state.steps, 2);
    auto [resumed, resumed_state] = run_steps(codec, &half_state, 2, 2);
    EXPECT_EQ(resumed, straight) << codec;
    EXPECT_EQ(resumed_state.steps, straight_state.steps) << codec;
    EXPECT_EQ(resumed_state.buckets, straight_state.buckets) << codec;
  }
  // A state of the wrong shape is refused with a message.
  const size_t n = 10;
  std::vector<float> grads(n);
  GradSync sync(ctx(), grads.data(), n, {GradRange{0, n, {}}}, options_for("topk:0.5"));
  SyncState wrong{0, {std::vector<float>(3)}};
  try {
    sync.load_state(wrong);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 floats"), std::string::npos) << e.what();
  }
}

// PiecedCollective against the one MPI call it stands for: the same bytes for every cut, blocks of unequal
// lengths included, and at most kMaxPieces in flight.
TEST(CommPieces, EqualTheWholeCollectiveForEveryCut) {
  const int world = ctx().world(), me = ctx().rank();
  auto byte_of = [](int from, int to, int i) { return static_cast<unsigned char>(37 * from + 11 * to + i); };
  // The shape of ZeRO-1's exchange: every rank sends block `to` (to · 29 + 5 bytes, rank 0's shortest) to
  // rank `to`, so every rank sees the same largest block, as the cut requires.
  std::vector<int> send_counts(world), send_offsets(world), receive_counts(world), receive_offsets(world);
  int sent = 0, received = 0;
  for (int r = 0; r < world; ++r) {
    send_counts[r] = r * 29 + 5;
    receive_counts[r] = me * 29 + 5;
    send_offsets[r] = sent, receive_offsets[r] = received;
    sent += send_counts[r], received += receive_counts[r];
  }
  std::vector<unsigned char> send(sent);
  for (int r = 0; r < world; ++r)
    for (int i = 0; i < send_counts[r]; ++i) send[send_offsets[r] + i] = byte_of(me, r, i);
  std::vector<unsigned char> whole(received);
  MPI_Alltoallv(send.data(), send_counts.data(), send_offsets.data(), MPI_BYTE, whole.data(),
                receive_counts.data(), receive_offsets.data(), MPI_BYTE, ctx().comm());
  const size_t largest = (world - 1) * 29 + 5;
  for (size_t piece_bytes : {size_t{1}, size_t{7}, size_t{64}, size_t{1} << 20}) {
    PiecedCollective exchange(piece_bytes);
    std::vector<unsigned char> pieced(received, 0);
    exchange.start_alltoallv(send.data(), send_counts, send_offsets, pieced.data(), receive_counts,
                             receive_offsets, ctx().comm(), "test all-to-all");
    ctx().wait(exchange.requests(), exchange.size(), "test all-to-all");
    EXPECT_EQ(pieced, whole) << piece_bytes << " bytes a piece";
    const size_t expected = std::min((largest + piece_bytes - 1) / piece_bytes, PiecedCollective::kMaxPieces);
    EXPECT_EQ(exchange.size(), static_cast<int>(expected)) << piece_bytes;

    // All-gather in place: rank r's block is (r + 1) · 53 bytes.
    std::vector<int> counts(world), offsets(world);
    int total = 0;
    for (int r = 0; r < world; ++r) counts[r] = (r + 1) * 53, offsets[r] = total, total += counts[r];
    std::vector<unsigned char> all(total, 0);
    for (int i = 0; i < counts[me]; ++i) all[offsets[me] + i] = byte_of(me, me, i);
    PiecedCollective gather(piece_bytes);
    gather.start_allgatherv(all.data(), counts, offsets, MPI_BYTE, ctx().comm(), "test all-gather");
    while (!gather.test("test all-gather")) {
    }
    for (int r = 0; r < world; ++r)
      for (int i = 0; i < counts[r]; ++i) ASSERT_EQ(all[offsets[r] + i], byte_of(r, r, i)) << r << " " << i;

    // All-reduce in place of 1,001 floats (small integers: every order of the sum is exact).
    std::vector<float> values(1001), summed(1001);
    for (size_t i = 0; i < values.size(); ++i)
      values[i] = summed[i] = static_cast<float>((me + 1) * (i % 17));
    MPI_Allreduce(MPI_IN_PLACE, summed.data(), 1001, MPI_FLOAT, MPI_SUM, ctx().comm());
    PiecedCollective reduce(piece_bytes);
    reduce.start_allreduce(values.data(), values.size(), MPI_SUM, ctx().comm(), "test all-reduce");
    ctx().wait(reduce.requests(), reduce.size(), "test all-reduce");
    EXPECT_EQ(values, summed) << piece_bytes;
    EXPECT_EQ(reduce.size(), static_cast<int>(std::min((4004 + piece_bytes - 1) / piece_bytes,
                                                       PiecedCollective::kMaxPieces)));
  }
}

// Rank 0 prints gtest's report; other ranks print only their failures, with their rank.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed()) {
      fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, result.file_name() ? result.file_name() : "?",
              result.line_number(), result.message());
    }
  }

 private:
  int rank_;
};

}  // namespace
}  // namespace triad::comm

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int ranks_per_node = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--ranks-per-node=", 17) == 0) ranks_per_node = std::atoi(argv[i] + 17);
  }
  triad::comm::opened() = triad::comm::Context::open({.timeout_s = 60, .ranks_per_node = ranks_per_node});
  triad::comm::Context& context = triad::comm::ctx();
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  if (context.rank() != 0) {
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new triad::comm::FailurePrinter(context.rank()));
  }
  int failed = RUN_ALL_TESTS() != 0;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, context.comm());
  triad::comm::opened().reset();
  triad::comm::shutdown(0);
  return failed;
}
