#include "triad/model/quantized_state.h"

#include <algorithm>
#include <cmath>

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

float quantize_block(const float* values, size_t n, QuantMap map, uint8_t* codes) {
  const CodeMap& table = dynamic_map(map);
  float absmax = 0;
  for (size_t i = 0; i < n; ++i) absmax = std::max(absmax, std::fabs(values[i]));
  if (absmax == 0) {
    const uint8_t zero = nearest_code(table, 0.0f);
    std::fill(codes, codes + n, zero);
    return 0;
  }
  for (size_t i = 0; i < n; ++i) codes[i] = nearest_code(table, values[i] / absmax);
  return absmax;
}

void dequantize_block(const uint8_t* codes, size_t n, float absmax, QuantMap map, float* values) {
  const CodeMap& table = dynamic_map(map);
  for (size_t i = 0; i < n; ++i) values[i] = table[codes[i]] * absmax;
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
