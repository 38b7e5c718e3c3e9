#include "triad/comm/encoding.h"

#include <cstring>

#include "triad/comm/codec_internal.h"
#include "triad/comm/kernels.h"

namespace triad::comm {

size_t quantized_bytes(bool int8, size_t n, size_t chunk) {
  return round_up(int8 ? int8_bytes(n, chunk) : 2 * n, 8);
}

size_t Encoding::bytes(size_t n) const {
  return kind == CodecKind::kNone ? 4 * n : quantized_bytes(kind == CodecKind::kInt8, n, options.int8_chunk);
}

void Encoding::encode(const float* x, size_t n, uint8_t* out, int64_t step, int phase, int shard) const {
  if (kind == CodecKind::kNone) return static_cast<void>(std::memcpy(out, x, 4 * n));
  if (kind == CodecKind::kFp16) return fp16_encode(x, n, reinterpret_cast<uint16_t*>(out));
  uint64_t noise = 0;
  if (options.int8_stochastic) {
    noise = mix64(options.seed ^ mix64(static_cast<uint64_t>(tag) << 32 | static_cast<uint32_t>(me)) ^
                  mix64(static_cast<uint64_t>(step) * 4 + phase) ^ mix64(~static_cast<uint64_t>(shard)));
    noise |= 1;  // 0 would mean nearest rounding
  }
  int8_encode(x, n, options.int8_chunk, noise, out);
}

void Encoding::decode(const uint8_t* in, size_t n, float* out, bool add) const {
  switch (kind) {
    case CodecKind::kInt8:
      return add ? int8_decode_add(in, n, options.int8_chunk, out)
                 : int8_decode(in, n, options.int8_chunk, out);
    case CodecKind::kFp16: {
      const uint16_t* half = reinterpret_cast<const uint16_t*>(in);
      return add ? fp16_decode_add(half, n, out) : fp16_decode(half, n, out);
    }
    default: {
      const float* x = reinterpret_cast<const float*>(in);
      if (!add) return static_cast<void>(std::memcpy(out, x, 4 * n));
      for (size_t i = 0; i < n; ++i) out[i] += x[i];
    }
  }
}

}  // namespace triad::comm
