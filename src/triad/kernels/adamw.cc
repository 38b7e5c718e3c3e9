#include "triad/kernels/adamw.h"

#include <cmath>

#include "triad/core/parallel.h"

namespace triad {

void adamw_update_serial(float* params, const float* grads, float* m, float* v, size_t n,
                         const AdamWParams& p, int step) {
  const float c1 = 1.0f - std::pow(p.beta1, static_cast<float>(step));
  const float c2 = 1.0f - std::pow(p.beta2, static_cast<float>(step));
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    const float g = grads[i];
    m[i] = p.beta1 * m[i] + (1.0f - p.beta1) * g;
    v[i] = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
    const float update = (m[i] / c1) / (std::sqrt(v[i] / c2) + p.eps);
    params[i] -= p.lr * (update + p.weight_decay * params[i]);
  }
}

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  int step) {
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
        adamw_update_serial(params + i0, grads + i0, m + i0, v + i0, i1 - i0, p, step);
      },
      1 << 15);
}

}  // namespace triad
