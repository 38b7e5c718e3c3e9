#include "triad/kernels/residual.h"

#include "triad/core/parallel.h"

namespace triad {

template <typename Real>
void residual_forward(Real* out, const Real* a, const Real* b, size_t n) {
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
#pragma omp simd
        for (size_t i = i0; i < i1; ++i) out[i] = a[i] + b[i];
      },
      1 << 16);
}

template <typename Real>
void accumulate(Real* dst, const Real* src, size_t n) {
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
#pragma omp simd
        for (size_t i = i0; i < i1; ++i) dst[i] += src[i];
      },
      1 << 16);
}

template void residual_forward<float>(float*, const float*, const float*, size_t);
template void residual_forward<double>(double*, const double*, const double*, size_t);
template void accumulate<float>(float*, const float*, size_t);
template void accumulate<double>(double*, const double*, size_t);

}  // namespace triad
