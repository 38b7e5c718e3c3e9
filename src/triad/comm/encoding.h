#pragma once
// The byte form of floats on the wire, free of MPI: an Encoding fills and reads buffers, codecs send them.

#include <cstddef>
#include <cstdint>

#include "triad/comm/codec_spec.h"

namespace triad::comm {

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

}  // namespace triad::comm
