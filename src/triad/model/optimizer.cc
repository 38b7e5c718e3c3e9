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

double adamw_state_bytes_per_parameter(StatePrecision precision) {
  if (precision == StatePrecision::kFp32) return 2 * sizeof(float);
  return 2 * (sizeof(uint8_t) + static_cast<double>(sizeof(float)) / kQuantBlock);
}

AdamW::AdamW(const ParameterLayout& layout, size_t offset, size_t count, StatePrecision precision)
    : layout_(layout), offset_(offset), count_(count), precision_(precision) {
  if (precision == StatePrecision::kFp32) {
    m_.assign(count, 0.0f);
    v_.assign(count, 0.0f);
    return;
  }
  blocks_ = quantization_boundaries(layout, offset, offset + count);
  const size_t n = blocks_.size() - 1;
  // Zero moments: every block's absmax 0, every code the map's 0.
  m8_.codes.assign(count, nearest_code(dynamic_map(QuantMap::kSigned), 0.0f));
  v8_.codes.assign(count, nearest_code(dynamic_map(QuantMap::kUnsigned), 0.0f));
  m8_.absmax.assign(n, 0.0f);
  v8_.absmax.assign(n, 0.0f);
  const std::vector<TensorSpec>& tensors = layout.tensors();
  for (size_t b = 0; b < n; ++b) {
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorSpec& t) {
      return blocks_[b] >= t.offset && blocks_[b] < t.offset + t.count;
    });
    block_tensor_.push_back(static_cast<size_t>(it - tensors.begin()));
  }
}

size_t AdamW::state_bytes() const {
  if (precision_ == StatePrecision::kFp32) return (m_.size() + v_.size()) * sizeof(float);
  return 2 * quantized_moment_bytes(count_, m8_.absmax.size());
}

AdamWParams AdamW::params_of(const TensorSpec& t, float lr, const AdamWConfig& o) const {
  AdamWParams p{lr, o.beta1, o.beta2, 1e-8f, t.decay ? o.weight_decay : 0.0f};
  for (const Override& r : overrides_) {
    if (t.offset >= r.begin && t.offset < r.end) p.beta1 = r.beta1, p.lr = lr * r.lr_scale;
  }
  return p;
}

void AdamW::update(float* params, const float* grads, float lr, const AdamWConfig& o) {
  ++t_;
  if (precision_ == StatePrecision::k8Bit) return update_8bit(params, grads, lr, o);
  const size_t end = offset_ + count_;
  for (const TensorSpec& t : layout_.tensors()) {
    // The part of tensor t inside the owned range (all of it without sharding).
    const size_t lo = std::max(t.offset, offset_), hi = std::min(t.offset + t.count, end);
    if (lo >= hi) continue;
    adamw_update(params + lo, grads + lo, m_.data() + (lo - offset_), v_.data() + (lo - offset_), hi - lo,
                 params_of(t, lr, o), t_);
  }
}

void AdamW::update_8bit(float* params, const float* grads, float lr, const AdamWConfig& o) {
  std::vector<AdamWParams> per_tensor;
  for (const TensorSpec& t : layout_.tensors()) per_tensor.push_back(params_of(t, lr, o));
  // Blocks are independent: each thread takes a contiguous run of them, the same bits at any thread count.
  parallel_chunks(
      blocks_.size() - 1,
      [&](size_t b0, size_t b1) {
        float m[kQuantBlock], v[kQuantBlock];
        for (size_t b = b0; b < b1; ++b) {
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
