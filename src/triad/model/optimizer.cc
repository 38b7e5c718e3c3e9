#include "triad/model/optimizer.h"

#include <algorithm>
#include <cmath>

#include "triad/core/error.h"
#include "triad/core/parallel.h"
#include "triad/kernels/adamw.h"
#include "triad/model/quantized_state.h"

namespace triad {

StatePrecision parse_state_precision(const std::string& name, const std::string& flag) {
  if (name == "fp32") return StatePrecision::kFp32;
  if (name == "8bit") return StatePrecision::k8Bit;
  fail_usage("{} {}: expected fp32 or 8bit", flag, name);
}

const char* state_precision_name(StatePrecision precision) {
  return precision == StatePrecision::k8Bit ? "8bit" : "fp32";
}

double adamw_state_bytes_per_parameter(StatePrecision precision) {  // the fp32-state tensors aside
  if (precision == StatePrecision::kFp32) return 2 * sizeof(float);
  return 2 * (sizeof(uint8_t) + static_cast<double>(sizeof(float)) / kQuantBlock);
}

AdamW::AdamW(const ParameterLayout& layout, size_t offset, size_t count, StatePrecision precision)
    : layout_(layout), offset_(offset), count_(count), precision_(precision) {
  const std::vector<TensorSpec>& tensors = layout.tensors();
  size_t fp32 = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSpec& t = tensors[i];
    const size_t lo = std::max(t.offset, offset), hi = std::min(t.offset + t.count, offset + count);
    if (lo >= hi) continue;
    const bool quantized = precision == StatePrecision::k8Bit && !keeps_fp32_state(t);
    segments_.push_back({lo, hi, i, quantized ? -1 : static_cast<ptrdiff_t>(fp32)});
    if (!quantized) fp32 += hi - lo;
  }
  m_.assign(fp32, 0.0f);
  v_.assign(fp32, 0.0f);
  if (precision == StatePrecision::kFp32) return;
  blocks_ = quantization_boundaries(layout, offset, offset + count);
  const size_t n = blocks_.size() - 1;
  // Zero moments: every block's absmax 0, every code the map's 0.
  m8_.codes.assign(count, nearest_code(dynamic_map(QuantMap::kSigned), 0.0f));
  v8_.codes.assign(count, nearest_code(dynamic_map(QuantMap::kUnsigned), 0.0f));
  m8_.absmax.assign(n, 0.0f);
  v8_.absmax.assign(n, 0.0f);
  for (size_t b = 0; b < n; ++b) {
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorSpec& t) {
      return blocks_[b] >= t.offset && blocks_[b] < t.offset + t.count;
    });
    block_tensor_.push_back(static_cast<size_t>(it - tensors.begin()));
    block_quantized_.push_back(!keeps_fp32_state(*it));
  }
}

size_t AdamW::state_bytes() const {
  const size_t fp32 = (m_.size() + v_.size()) * sizeof(float);
  if (precision_ == StatePrecision::kFp32) return fp32;
  return fp32 + 2 * quantized_moment_bytes(count_, m8_.absmax.size());
}

AdamWParams AdamW::params_of(const TensorSpec& t, float lr, const AdamWConfig& o) const {
  AdamWParams p{lr, o.beta1, o.beta2, 1e-8f, t.decay ? o.weight_decay : 0.0f};
  for (const Override& r : overrides_) {
    if (t.offset >= r.begin && t.offset < r.end) p.beta1 = r.beta1, p.lr = lr * r.lr_scale;
  }
  return p;
}

void AdamW::update(float* params, const float* grads, float lr, const AdamWConfig& o) {
  begin_step();
  update_range(params, grads, lr, o, offset_, offset_ + count_);
}

void AdamW::update_range(float* params, const float* grads, float lr, const AdamWConfig& o, size_t begin,
                         size_t end) {
  const std::vector<TensorSpec>& tensors = layout_.tensors();
  for (const Segment& s : segments_) {
    if (s.fp32_at < 0 || s.hi <= begin || s.lo >= end) continue;
    if (s.lo < begin || s.hi > end) fail("AdamW: [{}, {}) cuts a tensor", begin, end);
    float* m = m_.data() + s.fp32_at;
    float* v = v_.data() + s.fp32_at;
    adamw_update(params + s.lo, grads + s.lo, m, v, s.hi - s.lo, params_of(tensors[s.tensor], lr, o), t_);
  }
  if (precision_ == StatePrecision::kFp32) return;
  std::vector<AdamWParams> per_tensor;
  for (const TensorSpec& t : tensors) per_tensor.push_back(params_of(t, lr, o));
  const auto b0 = std::lower_bound(blocks_.begin(), blocks_.end() - 1, std::max(begin, offset_));
  const auto b1 = std::lower_bound(blocks_.begin(), blocks_.end() - 1, std::min(end, offset_ + count_));
  update_blocks(params, grads, static_cast<size_t>(b0 - blocks_.begin()),
                static_cast<size_t>(b1 - blocks_.begin()), per_tensor);
}

void AdamW::update_blocks(float* params, const float* grads, size_t b0, size_t b1,
                          const std::vector<AdamWParams>& per_tensor) {
  // Blocks are independent: each thread takes a contiguous run of them, the same bits at any thread count.
  // Per block, dequantize, update and quantize again while the block is in the L1 cache.
  parallel_chunks(
      b1 - b0,
      [&](size_t c0, size_t c1) {
        float m[kQuantBlock], v[kQuantBlock];
        for (size_t b = b0 + c0; b < b0 + c1; ++b) {
          if (!block_quantized_[b]) continue;
          const size_t lo = blocks_[b], n = blocks_[b + 1] - lo, at = lo - offset_;
          dequantize_block(m8_.codes.data() + at, n, m8_.absmax[b], QuantMap::kSigned, m);
          dequantize_block(v8_.codes.data() + at, n, v8_.absmax[b], QuantMap::kUnsigned, v);
          adamw_update_serial(params + lo, grads + lo, m, v, n, per_tensor[block_tensor_[b]], t_);
          m8_.absmax[b] = quantize_block(m, n, QuantMap::kSigned, m8_.codes.data() + at);
          v8_.absmax[b] = quantize_block(v, n, QuantMap::kUnsigned, v8_.codes.data() + at);
        }
      },
      4);
}

}  // namespace triad
