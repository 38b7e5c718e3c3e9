#include "triad/train/optimizer.h"

#include <algorithm>
#include <cmath>

#include "triad/core/parallel.h"
#include "triad/kernels/adamw.h"

namespace triad {

AdamW::AdamW(const ParameterLayout& layout, size_t offset, size_t count)
    : layout_(layout), offset_(offset), m_(count, 0.0f), v_(count, 0.0f) {}

void AdamW::update(float* params, const float* grads, float lr, const TrainOptions& o) {
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

double sum_of_squares(const float* grads, size_t n) {
  std::vector<double> partial(static_cast<size_t>(threads()), 0.0);
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t i = i0; i < i1; ++i) s += static_cast<double>(grads[i]) * grads[i];
        partial[static_cast<size_t>(omp_get_thread_num())] = s;
      },
      1 << 15);
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

double global_norm(const float* grads, size_t n) {
  return std::sqrt(sum_of_squares(grads, n));
}

void scale_in_place(float* data, size_t n, float factor) {
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
#pragma omp simd
        for (size_t i = i0; i < i1; ++i) data[i] *= factor;
      },
      1 << 15);
}

}  // namespace triad
