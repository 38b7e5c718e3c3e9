#pragma once
// Gradient codecs: how one bucket is averaged over the ranks of a communicator, in what form it travels.
//
//   none           MPI_Iallreduce of the floats
//   fp16           all-to-all of fp16 shards, each owner sums its shard in fp32, all-gather of the fp16 means
//   int8           the same in int8 with a float scale per chunk (optionally stochastic rounding)
//   topk:RATIO     each rank keeps the RATIO largest-magnitude entries of gradient + residual (error
//                  feedback: the rest, and the fp16 rounding of what is sent, stays in the residual),
//                  all-gather of the indices (Elias-Fano coded, ~1.1 bytes each at 1 %) and fp16 values
//   powersgd:RANK  rank-RANK factors P = M Q and Q = M^T P of every matrix with error feedback, all-reduce of
//                  P (with the non-matrix entries) then of Q; Q starts the next step (warm start)
//   auto[:LIST]    per bucket, the codec of LIST (default fp16,int8,topk:0.01,powersgd:4) that the cost
//                  model predicts fastest, if it beats none (see topology.h)
//
// A Codec is a small state machine over non-blocking MPI collectives: start() encodes and posts the first
// collective, poll() advances (decoding, posting the next phase) and returns true once the bucket holds the
// average. Neither blocks, so one progress loop can drive many buckets while the backward computes. Every
// rank ends with bit-identical averages. One instance per bucket keeps that bucket's state.

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "triad/comm/buckets.h"

namespace triad::comm {

enum class CodecKind { kNone, kFp16, kInt8, kTopK, kPowerSgd, kAuto };

struct CodecSpec {
  CodecKind kind = CodecKind::kNone;
  double ratio = 0.01;                // topk: fraction of a bucket's entries sent
  int rank = 4;                       // powersgd: rank of the approximation
  std::vector<CodecSpec> candidates;  // auto: what it may choose from
  std::string name() const;           // as written on the command line: "topk:0.01"
  // Top-K and PowerSGD keep residuals that carry gradient into later steps: what they hold back escapes
  // the clipping of the average, so the trainer clips their buckets per rank first.
  bool keeps_error_feedback() const { return kind == CodecKind::kTopK || kind == CodecKind::kPowerSgd; }
};

// Parses --grad-compression: none | fp16 | int8 | topk:RATIO | powersgd:RANK | auto[:SPEC,SPEC...].
CodecSpec parse_codec_spec(const std::string& text);

struct CodecOptions {
  size_t int8_chunk = 256;        // --int8-chunk: values per int8 scale
  bool int8_stochastic = false;   // --int8-stochastic: unbiased stochastic rounding
  int64_t topk_warmup_steps = 0;  // --topk-warmup: steps over which top-K density falls from 25 % to RATIO
  uint64_t seed = 1234;           // rounding noise and PowerSGD's first Q (the same on every rank)
};

// How a run of floats travels: as they are (none), fp16, or int8 with a float scale per `chunk` values
// (padded to 8 bytes), optionally rounded stochastically with noise that depends on (seed, tag, rank `me`,
// step, phase, shard): deterministic, different per rank. The quantized codecs, ZeRO-1's shard exchange and
// its update all-gather use it.
struct Encoding {
  CodecKind kind;  // kNone, kFp16 or kInt8
  CodecOptions options;
  int tag, me;

  size_t bytes(size_t n) const;
  void encode(const float* x, size_t n, uint8_t* out, int64_t step, int phase, int shard) const;
  // out = decode(in), or out += decode(in) with `add`.
  void decode(const uint8_t* in, size_t n, float* out, bool add) const;
};

// Entries top-K sends from a bucket of n at this step: DGC-style warm-up, density falling exponentially
// from 25 % to the ratio over the warm-up steps, at least one entry.
size_t topk_count(size_t n, double ratio, int64_t step, int64_t warmup_steps);
// Bytes of one rank's top-K block for k entries of a bucket of n: the coded indices, then k fp16 values.
size_t topk_block_bytes(size_t n, size_t k);

// One collective as the wire sees it. `bytes` is what each rank passes in: the whole buffer for
// all-reduce, reduce-scatter, reduce and broadcast, its own block for all-gather, its whole send buffer for
// all-to-all.
enum class Collective { kAllreduce, kAllgather, kAlltoall, kReduceScatter, kReduce, kBroadcast };
struct Transfer {
  Collective kind;
  uint64_t bytes;
  int ranks;
};
// Bytes one rank sends in the bandwidth-optimal algorithm (ring all-reduce: 2 (p-1)/p S, all-gather (p-1) S,
// all-to-all and reduce-scatter (p-1)/p S, pipelined reduce and broadcast (p-1)/p S), and the number of
// sequential message steps (2 (p-1), p-1, p-1, p-1, ceil(log2 p)).
uint64_t bytes_sent(const Transfer& t);
int message_steps(const Transfer& t);
// The collectives `spec` (not auto) issues to average `bucket` over `ranks` ranks at `step`.
std::vector<Transfer> codec_transfers(const CodecSpec& spec, const GradRange& bucket, int ranks,
                                      const CodecOptions& options, int64_t step);
// PowerSGD compresses a matrix only when the factors are smaller than it.
bool powersgd_compresses(const Matrix& m, int rank);

class Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string name() const = 0;
  // Starts averaging the bucket whose first float is `data`. `step` counts finished steps (top-K warm-up).
  virtual void start(float* data, int64_t step) = 0;
  // Advances without blocking; true once the bucket holds the average. Fails on MPI errors.
  virtual bool poll() = 0;
  // What start(step) puts on the wire.
  virtual std::vector<Transfer> transfers(int64_t step) const = 0;
  // Error-feedback residuals and warm-start factors, for checkpoints (empty for stateless codecs). A state
  // of the wrong size is an error naming the codec.
  virtual std::vector<float> save_state() const { return {}; }
  virtual void load_state(const std::vector<float>& state);
};

// The codec that averages `bucket` over `comm` (duplicate it for this use: its collectives must not
// interleave with others). `spec` must not be auto. `tag` (e.g. the bucket index) varies the rounding noise.
std::unique_ptr<Codec> make_codec(const CodecSpec& spec, const GradRange& bucket, MPI_Comm comm,
                                  const CodecOptions& options, int tag);
// Hierarchical averaging over all ranks: reduce inside the node to its leader, average among the leaders
// with `leader_codec` (null on non-leaders, or when there is one node), broadcast inside the node.
std::unique_ptr<Codec> make_hierarchical(std::unique_ptr<Codec> leader_codec, const GradRange& bucket,
                                         MPI_Comm node_comm, int world, int nodes);
// ZeRO-1: each rank receives the average of its part of the bucket (owner_begin[r] .. owner_begin[r + 1] is
// rank r's part, in floats of the whole buffer). `spec` none: a reduce-scatter of the floats; fp16 or int8:
// an all-to-all of each owner's part encoded, summed by the owner in fp32 (no all-gather).
std::unique_ptr<Codec> make_shard_reduce(const CodecSpec& spec, const GradRange& bucket,
                                         const std::vector<size_t>& owner_begin, MPI_Comm comm,
                                         const CodecOptions& options, int tag);

}  // namespace triad::comm
