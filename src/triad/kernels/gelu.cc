#include "triad/kernels/gelu.h"

#include <cmath>

#include "triad/core/vector_math.h"

#include "triad/core/parallel.h"

namespace triad {

namespace {
template <typename Real>
constexpr Real kGeluScale = Real(0.7978845608028654);  // sqrt(2 / pi)
}

template <typename Real>
void gelu_forward(Real* out, const Real* inp, size_t n) {
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
#pragma omp simd
        for (size_t i = i0; i < i1; ++i) {
          const Real x = inp[i];
          const Real u = kGeluScale<Real> * (x + Real(0.044715) * x * x * x);
          out[i] = Real(0.5) * x * (Real(1) + std::tanh(u));
        }
      },
      1 << 14);
}

template <typename Real>
void gelu_backward(Real* dinp, const Real* inp, const Real* dout, size_t n) {
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
#pragma omp simd
        for (size_t i = i0; i < i1; ++i) {
          const Real x = inp[i];
          const Real u = kGeluScale<Real> * (x + Real(0.044715) * x * x * x);
          const Real t = std::tanh(u);
          const Real sech2 = Real(1) - t * t;
          const Real du = kGeluScale<Real> * (Real(1) + Real(3 * 0.044715) * x * x);
          dinp[i] += dout[i] * (Real(0.5) * (Real(1) + t) + Real(0.5) * x * sech2 * du);
        }
      },
      1 << 14);
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_forward<double>(double*, const double*, size_t);
template void gelu_backward<float>(float*, const float*, const float*, size_t);
template void gelu_backward<double>(double*, const double*, const double*, size_t);

}  // namespace triad
