#pragma once
// GradSync turns each rank's local gradients into their average over all ranks (paper Eq. 12), bucket by
// bucket, while the backward is still computing.
//
//   auto ctx = comm::Context::open({.timeout_s = 300});
//   comm::BucketPlan plan = comm::plan_buckets(blocks, /*bucket_mb=*/4);
//   comm::GradSync sync(*ctx, grads, n, plan.buckets, options);  // collective
//   every step:
//     for block b = last .. 0:  backward of b;  if (int i = plan.ready_after_block[b]; i >= 0)
//     sync.bucket_ready(i); sync.finish();        // grads hold the average (with zero1: this rank's shard of
//     it) with zero1: sync.before_update(params), the optimizer step on this rank's shard only, then
//     sync.gather_params(params); otherwise the optimizer step on everything. log sync.stats();
//
// bucket_ready() only hands the bucket over: with Progress::kThread a progress thread encodes it, posts its
// non-blocking collectives and polls them (MPI_Test) every poll_us while the backward runs; with
// Progress::kPoll that work happens inside bucket_ready() and finish(). A single process (world 1) makes no
// MPI call and leaves gradients as they are. All ranks must construct GradSync with the same buckets and
// options and call finish() once per step.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "triad/comm/buckets.h"
#include "triad/comm/codec.h"
#include "triad/comm/context.h"
#include "triad/comm/topology.h"

namespace triad::comm {

enum class Progress { kThread, kPoll };

struct GradSyncOptions {
  CodecSpec codec;             // --grad-compression
  CodecOptions codec_options;  // --int8-chunk, --int8-stochastic, --topk-warmup, the run's seed
  bool hierarchical = false;   // --hierarchical: reduce in the node, codec among node leaders, broadcast
  bool zero1 =
      false;  // --zero 1: each rank receives its shard of the average (none, fp16, int8; not hierarchical)
  Progress progress = Progress::kThread;  // --comm-progress
  int poll_us = 50;                       // progress thread: sleep between polls when nothing moved
  // For auto: the measured links and speeds (--topology). Without one GradSync measures a quick one.
  std::optional<Topology> topology;
  // ZeRO-1: where a bucket's parts may end (ascending, from 0 to the count; empty: anywhere). 8-bit optimizer
  // states give their block boundaries, so that no block is split between two ranks.
  std::vector<size_t> shard_cuts;
};

// What one step's aggregation cost; reset by every finish().
struct StepStats {
  uint64_t bytes_sent = 0;          // bytes this rank put on the wire (bandwidth-optimal model, codec.h)
  double comm_ms = 0;               // wall time during which at least one bucket was in flight
  double wait_ms = 0;               // time finish() waited for them
  double comm_hidden_fraction = 1;  // 1 - wait / comm: the share of communication hidden behind the backward
  std::string codec;                // "topk:0.01"; auto shows its choices: "auto(int8x3,topk:0.01x2)"
};

// The state a checkpoint must keep for a bit-exact resume. Residuals differ per rank: save every rank's.
struct SyncState {
  int64_t steps = 0;                        // finish() calls so far (the top-K warm-up clock)
  std::vector<std::vector<float>> buckets;  // per bucket: the codec's save_state()
};

// ZeRO-1 ownership: every gradient bucket is cut into one part per rank, and rank r owns part r of each (as
// Megatron-LM's distributed optimizer shards its buckets). Each bucket's exchange then runs in every
// direction while the backward computes. (One contiguous shard per rank, as before, made each bucket travel
// one way on two ranks, the first shard's only after the backward: 2.6 s against 1.5 s over a 100 Mbit/s
// link, docs/results/2026-12-06-codec-pieces.md.)
struct ShardLayout {
  struct Range {
    size_t offset, count;
  };
  // Per bucket (in the order given to shard_layout()): world + 1 boundaries in the flat buffer, rank r
  // owning [parts[b][r], parts[b][r + 1]).
  std::vector<std::vector<size_t>> parts;
  // Rank r's parts, ascending, empty ones left out.
  std::vector<Range> owned(int rank) const;
  // Floats rank r owns.
  size_t count(int rank) const;
};
// Each bucket in equal parts but the last; with `cuts` (ascending, every bucket boundary among them), each
// boundary moved to the nearest cut.
ShardLayout shard_layout(const std::vector<GradRange>& buckets, int world,
                         const std::vector<size_t>& cuts = {});

class GradSync {
 public:
  GradSync(Context& context, float* grads, size_t count, std::vector<GradRange> buckets,
           const GradSyncOptions& options);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // The backward has finished bucket i: start averaging it. Each bucket once per step, in any order.
  void bucket_ready(int bucket);
  // Starts the buckets not yet ready, waits for all (failing after --comm-timeout with a message naming the
  // ranks that do not answer), and leaves the averages in place. Then stats() describes this step.
  void finish();

  // ZeRO-1, around the optimizer step on this rank's shard: before_update() keeps the shard as it is,
  // gather_params() then gives every rank all the parameters. With fp16 or int8 what travels is each shard's
  // update (after - before) so encoded, and every rank, the owner included, sets the shard to before +
  // decode(update): all ranks keep the same parameters; the update's rounding is not fed back (docs/comm.md,
  // ZeRO-1). With none, the fp32 parameters (all_gather_shards). Returns the bytes this rank sent.
  void before_update(const float* params);
  uint64_t gather_params(float* params);

  const StepStats& stats() const;
  // The codec of each bucket (auto's choices; none where --hierarchical has only one node to act on).
  const std::vector<CodecSpec>& bucket_codecs() const;
  const ShardLayout& shards() const;
  SyncState save_state() const;
  void load_state(const SyncState& state);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ZeRO-1, after each rank updated its parts of `params`: gives every rank all of them (in place, one
// all-gather per bucket, all in flight). Returns the bytes this rank sent.
uint64_t all_gather_shards(Context& context, float* params, const ShardLayout& layout);

}  // namespace triad::comm
