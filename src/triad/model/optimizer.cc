#include "triad/model/optimizer.h"

#include <algorithm>
#include <cmath>

#include "triad/kernels/adamw.h"

namespace triad {

AdamW::AdamW(const ParameterLayout& layout, size_t offset, size_t count)
    : layout_(layout), offset_(offset), m_(count, 0.0f), v_(count, 0.0f) {}

void AdamW::update(float* params, const float* grads, float lr, const AdamWConfig& o) {
  ++t_;
  const size_t end = offset_ + m_.size();
  for (const TensorSpec& t : layout_.tensors()) {
    // The part of tensor t inside the owned range (all of it without sharding).
    const size_t lo = std::max(t.offset, offset_), hi = std::min(t.offset + t.count, end);
    if (lo >= hi) continue;
    AdamWParams p{lr, o.beta1, o.beta2, 1e-8f, t.decay ? o.weight_decay : 0.0f};
    for (const Override& r : overrides_) {
      if (t.offset >= r.begin && t.offset < r.end) p.beta1 = r.beta1, p.lr = lr * r.lr_scale;
    }
    adamw_update(params + lo, grads + lo, m_.data() + (lo - offset_), v_.data() + (lo - offset_), hi - lo, p,
                 t_);
  }
}

}  // namespace triad
