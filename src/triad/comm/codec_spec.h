#pragma once
// Codec specs and the cost model: what --grad-compression names, and what a codec puts on the wire (the
// collectives, their bytes and message steps), so that auto (topology.h) can price a codec without running
// it. The codecs themselves are in codec.h.

#include <cstddef>
#include <cstdint>
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
  // Top-K, PowerSGD: what residuals hold back escapes clipping of the average; trainer clips per rank first.
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

}  // namespace triad::comm
