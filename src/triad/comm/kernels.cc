#include "triad/comm/kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

namespace triad::comm {

namespace {

constexpr float kFp16Max = 65504.0f;

// std::min/max return their first operand when a comparison involves NaN (the SSE min/max their second),
// so NaN passes through both clamps.
float clamp_fp16(float v) {
  return std::max(std::min(v, kFp16Max), -kFp16Max);
}

#if defined(__F16C__)
uint16_t to_half(float v) {
  return _cvtss_sh(clamp_fp16(v), _MM_FROUND_TO_NEAREST_INT);
}
float from_half(uint16_t h) {
  return _cvtsh_ss(h);
}
#else
uint16_t to_half(float v) {
  _Float16 h = static_cast<_Float16>(clamp_fp16(v));
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}
float from_half(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, 2);
  return static_cast<float>(h);
}
#endif

float magnitude(float v) {
  return std::isnan(v) ? std::numeric_limits<float>::infinity() : std::fabs(v);
}

// The k largest magnitudes among x[at(0)], x[at(1)], ..., x[at(m - 1)] (at increasing), in that order; ties
// at the threshold go to the earliest. scratch holds m floats.
template <typename At>
void select_among(const float* x, size_t m, At at, size_t k, uint32_t* index, float* value, float* scratch) {
  for (size_t j = 0; j < m; ++j) scratch[j] = magnitude(x[at(j)]);
  std::nth_element(scratch, scratch + (k - 1), scratch + m, std::greater<float>());
  float threshold = scratch[k - 1];
  size_t above = 0;
  for (size_t j = 0; j < m; ++j) above += magnitude(x[at(j)]) > threshold;
  size_t ties = k - above, taken = 0;
  for (size_t j = 0; j < m && taken < k; ++j) {
    uint32_t i = at(j);
    float a = magnitude(x[i]);
    if (a > threshold || (a == threshold && ties > 0)) {
      if (a == threshold) --ties;
      index[taken] = i;
      value[taken] = x[i];
      ++taken;
    }
  }
}

}  // namespace

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void fp16_encode(const float* x, size_t n, uint16_t* out) {
  size_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
  const __m256 hi = _mm256_set1_ps(kFp16Max), lo = _mm256_set1_ps(-kFp16Max);
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_max_ps(lo, _mm256_min_ps(hi, _mm256_loadu_ps(x + i)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
#endif
  for (; i < n; ++i) out[i] = to_half(x[i]);
}

void fp16_decode(const uint16_t* in, size_t n, float* out) {
  std::fill(out, out + n, 0.0f);
  fp16_decode_add(in, n, out);
}

void fp16_decode_add(const uint16_t* in, size_t n, float* acc) {
  size_t i = 0;
#if defined(__F16C__) && defined(__AVX__)
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i)));
    _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), v));
  }
#endif
  for (; i < n; ++i) acc[i] += from_half(in[i]);
}

size_t int8_bytes(size_t n, size_t chunk) {
  return (n + chunk - 1) / chunk * sizeof(float) + n;
}

void int8_encode(const float* x, size_t n, size_t chunk, uint64_t noise_seed, uint8_t* out) {
  size_t chunks = (n + chunk - 1) / chunk;
  int8_t* q = reinterpret_cast<int8_t*>(out + chunks * sizeof(float));
  for (size_t c = 0; c < chunks; ++c) {
    size_t begin = c * chunk, end = std::min(n, begin + chunk);
    float max_abs = 0;
    bool finite = true;
    for (size_t i = begin; i < end; ++i) {
      max_abs = std::max(max_abs, std::fabs(x[i]));
      finite &= std::isfinite(x[i]);
    }
    // A chunk holding inf or NaN decodes to NaN, so the trainer sees the overflow.
    float scale = finite ? max_abs / 127.0f : std::numeric_limits<float>::quiet_NaN();
    std::memcpy(out + c * sizeof(float), &scale, sizeof(float));
    float inverse = finite && max_abs > 0 ? 127.0f / max_abs : 0.0f;
    if (noise_seed == 0) {
      for (size_t i = begin; i < end; ++i) {
        q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * inverse), -127.0f, 127.0f));
      }
    } else {
      for (size_t i = begin; i < end; ++i) {
        float u = static_cast<float>(mix64(noise_seed ^ (i * 0xd1b54a32d192ed03ull)) >> 40) * 0x1p-24f;
        q[i] = static_cast<int8_t>(std::clamp(std::floor(x[i] * inverse + u), -127.0f, 127.0f));
      }
    }
  }
}

void int8_decode(const uint8_t* in, size_t n, size_t chunk, float* out) {
  std::fill(out, out + n, 0.0f);
  int8_decode_add(in, n, chunk, out);
}

void int8_decode_add(const uint8_t* in, size_t n, size_t chunk, float* acc) {
  size_t chunks = (n + chunk - 1) / chunk;
  const int8_t* q = reinterpret_cast<const int8_t*>(in + chunks * sizeof(float));
  for (size_t c = 0; c < chunks; ++c) {
    float scale;
    std::memcpy(&scale, in + c * sizeof(float), sizeof(float));
    size_t begin = c * chunk, end = std::min(n, begin + chunk);
    for (size_t i = begin; i < end; ++i) acc[i] += scale * static_cast<float>(q[i]);
  }
}

void topk_select(const float* x, size_t n, size_t k, uint32_t* index, float* value, float* scratch) {
  k = std::min(k, n);
  if (k == 0) return;
  if (n >= (1 << 16) && k <= n / 16) {
    // A threshold from every 64th magnitude, low enough that about 1.5 k + 512 entries pass it; when at
    // least k do, they hold the whole answer (ties included) and the exact selection runs on them alone.
    constexpr size_t kStride = 64;
    size_t samples = n / kStride;
    for (size_t j = 0; j < samples; ++j) scratch[j] = magnitude(x[j * kStride]);
    size_t rank = std::min(samples - 1, static_cast<size_t>(1.5 * k / kStride) + 8);
    std::nth_element(scratch, scratch + rank, scratch + samples, std::greater<float>());
    float low = scratch[rank];
    std::vector<uint32_t> candidates;
    candidates.reserve(2 * k + 1024);
    for (size_t i = 0; i < n; ++i) {
      if (magnitude(x[i]) >= low) candidates.push_back(static_cast<uint32_t>(i));
    }
    if (candidates.size() >= k) {
      select_among(
          x, candidates.size(), [&](size_t j) { return candidates[j]; }, k, index, value, scratch);
      return;
    }
  }
  select_among(
      x, n, [](size_t j) { return static_cast<uint32_t>(j); }, k, index, value, scratch);
}

namespace {

// The low-part width of the Elias-Fano code: floor(log2(n / k)), 0 when k >= n.
int index_low_bits(size_t n, size_t k) {
  int l = 0;
  while ((k << (l + 1)) <= n) ++l;
  return l;
}

}  // namespace

size_t index_code_bytes(size_t n, size_t k) {
  if (k == 0) return 0;
  size_t l = index_low_bits(n, k);
  size_t bits = k * l + ((n - 1) >> l) + k;
  return (bits + 7) / 8;
}

void index_encode(const uint32_t* index, size_t k, size_t n, uint8_t* out) {
  std::memset(out, 0, index_code_bytes(n, k));
  if (k == 0) return;
  const int l = index_low_bits(n, k);
  const uint64_t low_mask = (uint64_t{1} << l) - 1;
  size_t bit = 0;
  auto put = [&](uint64_t v, int width) {  // the low `width` bits of v, least significant first
    for (int b = 0; b < width; ++b, ++bit) out[bit >> 3] |= static_cast<uint8_t>(((v >> b) & 1) << (bit & 7));
  };
  for (size_t j = 0; j < k; ++j) put(index[j] & low_mask, l);
  for (size_t j = 0; j < k; ++j) {
    size_t at = bit + (index[j] >> l) + j;
    out[at >> 3] |= static_cast<uint8_t>(1u << (at & 7));
  }
}

bool index_decode(const uint8_t* in, size_t k, size_t n, uint32_t* index) {
  if (k == 0) return true;
  const int l = index_low_bits(n, k);
  const size_t high_begin = k * l, high_end = high_begin + ((n - 1) >> l) + k;
  auto get = [&](size_t at) { return (in[at >> 3] >> (at & 7)) & 1u; };
  for (size_t j = 0; j < k; ++j) {
    uint64_t low = 0;
    for (int b = 0; b < l; ++b) low |= uint64_t{get(j * l + b)} << b;
    index[j] = static_cast<uint32_t>(low);
  }
  size_t at = high_begin;
  for (size_t j = 0; j < k; ++j, ++at) {
    while (at < high_end && !get(at)) ++at;
    if (at == high_end) return false;
    uint64_t i = (uint64_t{at - high_begin - j} << l) | index[j];
    if (i >= n || (j > 0 && i <= index[j - 1])) return false;
    index[j] = static_cast<uint32_t>(i);
  }
  return true;
}

void orthogonalize(float* p, size_t rows, size_t cols) {
  for (size_t j = 0; j < cols; ++j) {
    double norm = 0;
    for (size_t r = 0; r < rows; ++r) norm += double(p[r * cols + j]) * p[r * cols + j];
    norm = std::sqrt(norm);
    float inverse = norm > 0 ? static_cast<float>(1.0 / norm) : 0.0f;
    for (size_t r = 0; r < rows; ++r) p[r * cols + j] *= inverse;
    for (size_t k = j + 1; k < cols; ++k) {
      double dot = 0;
      for (size_t r = 0; r < rows; ++r) dot += double(p[r * cols + j]) * p[r * cols + k];
      float d = static_cast<float>(dot);
      for (size_t r = 0; r < rows; ++r) p[r * cols + k] -= d * p[r * cols + j];
    }
  }
}

}  // namespace triad::comm
