#include "triad/kernels/encoder.h"

#include "triad/core/parallel.h"

namespace triad {

template <typename Real>
void encoder_forward(Real* out, const int32_t* tokens, const Real* wte, const Real* wpe, int B, int T,
                     int C) {
  parallel_chunks(
      static_cast<size_t>(B) * T,
      [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          const Real* e = wte + static_cast<size_t>(tokens[i]) * C;
          const Real* p = wpe + (i % T) * C;
          Real* o = out + i * C;
#pragma omp simd
          for (int c = 0; c < C; ++c) o[c] = e[c] + p[c];
        }
      },
      64);
}

template <typename Real>
void encoder_backward(Real* dwte, Real* dwpe, const Real* dout, const int32_t* tokens, int B, int T, int C) {
  parallel_chunks(
      static_cast<size_t>(C),
      [&](size_t c0, size_t c1) {
        for (size_t i = 0; i < static_cast<size_t>(B) * T; ++i) {
          const Real* d = dout + i * C;
          Real* e = dwte + static_cast<size_t>(tokens[i]) * C;
          Real* p = dwpe + (i % T) * C;
          for (size_t c = c0; c < c1; ++c) {
            e[c] += d[c];
            p[c] += d[c];
          }
        }
      },
      64);
}

template void encoder_forward<float>(float*, const int32_t*, const float*, const float*, int, int, int);
template void encoder_forward<double>(double*, const int32_t*, const double*, const double*, int, int, int);
template void encoder_backward<float>(float*, float*, const float*, const int32_t*, int, int, int);
template void encoder_backward<double>(double*, double*, const double*, const int32_t*, int, int, int);

}  // namespace triad
