#include "triad/model/quantized_state.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "triad/core/error.h"

namespace triad {

namespace {

// Exponents 10^-6 .. 10^0, the i-th with 2^i fractions (signed) or 2^(i+1) (unsigned): the midpoints of
// an even split of [0.1, 1]. With 0 and 1 that makes 127 + 127 + 2 or 254 + 2 codes.
CodeMap make_dynamic_map(bool is_signed) {
  constexpr int kExponents = 7;
  std::vector<double> codes;
  for (int i = 0; i < kExponents; ++i) {
    const int fractions = is_signed ? 1 << i : 1 << (i + 1);
    const double scale = std::pow(10.0, -(kExponents - 1) + i);
    for (int k = 0; k < fractions; ++k) {
      const double lo = 0.1 + 0.9 * k / fractions, hi = 0.1 + 0.9 * (k + 1) / fractions;
      const double mean = (lo + hi) / 2;
      codes.push_back(scale * mean);
      if (is_signed) codes.push_back(-scale * mean);
    }
  }
  codes.push_back(0.0);
  codes.push_back(1.0);
  if (codes.size() != 256) fail("dynamic map: {} codes, not 256", codes.size());
  std::sort(codes.begin(), codes.end());
  CodeMap out;
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(codes[i]);
  return out;
}

}  // namespace

const CodeMap& dynamic_map(QuantMap map) {
  static const CodeMap kSigned = make_dynamic_map(true), kUnsigned = make_dynamic_map(false);
  return map == QuantMap::kSigned ? kSigned : kUnsigned;
}

uint8_t nearest_code(const CodeMap& codes, float x) {
  // The last code <= x (codes[0] when none is), by halving steps without branches (a branchy binary
  // search cost 20 ns a value in the update of 91M parameters), then the nearer of it and the next one.
  size_t i = 0;
  for (size_t step = 128; step > 0; step /= 2) i = codes[i + step] <= x ? i + step : i;
  if (i == codes.size() - 1) return static_cast<uint8_t>(i);
  return static_cast<uint8_t>(x - codes[i] <= codes[i + 1] - x ? i : i + 1);
}

namespace {

// The index of the last code <= x for any x in [-1, 1], by a table rather than a search: x's magnitude falls
// in one of 256 equal steps of its binary exponent (the top 8 bits of the mantissa), exponents below 2^-30
// in one bucket with 0, and a bucket holds at most two codes, so two branchless steps from the table's entry
// (the last code at or below the bucket's lowest x) find the code. Then the nearer of it and the next one, by
// the same comparison as nearest_code(): the same index for every x. The 8-bit step of a 91M-parameter model
// went from 3.2 s to 1.3 s with it (fp32: 0.7 s; docs/results/2026-12-05-memory-fit.md).
class CodeIndex {
 public:
  explicit CodeIndex(const CodeMap& codes) {
    std::copy(codes.begin(), codes.end(), codes_.begin());
    codes_[256] = std::numeric_limits<float>::infinity();  // j + 1 never runs past the codes
    auto last_at_or_below = [&](float x) {
      const auto it = std::upper_bound(codes.begin(), codes.end(), x);
      return it == codes.begin() ? 0 : static_cast<int>(it - codes.begin()) - 1;
    };
    for (uint32_t k = 0; k < kBuckets; ++k) {
      const float lo = magnitude(k), hi = magnitude(k + 1);  // the bucket's magnitudes: [lo, hi)
      positive_[k] = static_cast<uint8_t>(last_at_or_below(lo));
      negative_[k] = static_cast<uint8_t>(last_at_or_below(-hi));
      // x in [lo, hi) or (-hi, -lo]: at most two codes above the entry and at or below x.
      const int steps_positive = last_at_or_below(std::nextafter(hi, 0.0f)) - positive_[k];
      const int steps_negative = last_at_or_below(-lo) - negative_[k];
      if (steps_positive > 2 || steps_negative > 2) fail("dynamic map: bucket {} holds over 2 codes", k);
    }
  }

  uint8_t nearest(float x) const {
    const uint32_t bits = std::bit_cast<uint32_t>(x);
    const uint32_t k = std::min(bucket(bits & 0x7FFFFFFFu), kBuckets - 1);  // NaN: some code, not a crash
    uint32_t j = (bits >> 31) ? negative_[k] : positive_[k];
    j += codes_[j + 1] <= x;
    j += codes_[j + 1] <= x;
    if (j == 255) return 255;
    return static_cast<uint8_t>(x - codes_[j] <= codes_[j + 1] - x ? j : j + 1);
  }

 private:
  static constexpr uint32_t kMinExponent = 127 - 30;  // 2^-30: everything below is one bucket
  static constexpr uint32_t kBuckets = (127 - kMinExponent) * 256 + 1;  // up to 1.0, its own bucket
  // The bucket of a magnitude's bits (|x| <= 1).
  static uint32_t bucket(uint32_t magnitude_bits) {
    const uint32_t e = magnitude_bits >> 23;
    return e < kMinExponent ? 0 : (e - kMinExponent) << 8 | ((magnitude_bits >> 15) & 0xFF);
  }
  // The lowest magnitude of bucket k (0 for bucket 0; 2.0 past the last).
  static float magnitude(uint32_t k) {
    if (k == 0) return 0.0f;
    if (k >= kBuckets) return 2.0f;
    return std::bit_cast<float>((kMinExponent + (k >> 8)) << 23 | (k & 0xFF) << 15);
  }

  std::array<float, 257> codes_;
  std::array<uint8_t, kBuckets> positive_, negative_;
};

const CodeIndex& code_index(QuantMap map) {
  static const CodeIndex kSigned(dynamic_map(QuantMap::kSigned)), kUnsigned(dynamic_map(QuantMap::kUnsigned));
  return map == QuantMap::kSigned ? kSigned : kUnsigned;
}

}  // namespace

uint8_t nearest_code_indexed(QuantMap map, float x) {
  return code_index(map).nearest(x);
}

float quantize_block(const float* values, size_t n, QuantMap map, uint8_t* codes) {
  float absmax = 0;
  for (size_t i = 0; i < n; ++i) absmax = std::max(absmax, std::fabs(values[i]));
  if (absmax == 0) {
    const uint8_t zero = nearest_code(dynamic_map(map), 0.0f);
    std::fill(codes, codes + n, zero);
    return 0;
  }
  const CodeIndex& index = code_index(map);
  for (size_t i = 0; i < n; ++i) codes[i] = index.nearest(values[i] / absmax);
  return absmax;
}

void dequantize_block(const uint8_t* codes, size_t n, float absmax, QuantMap map, float* values) {
  const CodeMap& table = dynamic_map(map);
  for (size_t i = 0; i < n; ++i) values[i] = table[codes[i]] * absmax;
}

bool keeps_fp32_state(const TensorSpec& t) {
  return t.count < kMinQuantizedTensor || t.name == "wte.weight" || t.name == "wpe.weight";
}

size_t fp32_state_count(const ParameterLayout& layout, size_t begin, size_t end) {
  size_t n = 0;
  for (const TensorSpec& t : layout.tensors()) {
    const size_t lo = std::max(t.offset, begin), hi = std::min(t.offset + t.count, end);
    if (keeps_fp32_state(t) && lo < hi) n += hi - lo;
  }
  return n;
}

std::vector<size_t> quantization_boundaries(const ParameterLayout& layout, size_t begin, size_t end) {
  std::vector<size_t> cuts;
  for (const TensorSpec& t : layout.tensors()) {
    for (size_t at = t.offset; at < t.offset + t.count; at += kQuantBlock) {
      if (at >= begin && at <= end) cuts.push_back(at);
    }
    if (t.offset + t.count >= begin && t.offset + t.count <= end) cuts.push_back(t.offset + t.count);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  if (cuts.empty() || cuts.front() != begin || cuts.back() != end) {
    fail("8-bit optimizer state: [{}, {}) does not start and end at quantization blocks", begin, end);
  }
  return cuts;
}

}  // namespace triad
