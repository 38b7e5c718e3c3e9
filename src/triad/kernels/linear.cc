#include "triad/kernels/linear.h"

#include "triad/core/parallel.h"
#include "triad/kernels/gemm.h"

namespace triad {

template <typename Real>
void linear_forward(Real* out, const Real* inp, const Real* weight, const Real* bias, int M, int C, int OC) {
  parallel_chunks(
      static_cast<size_t>(M),
      [&](size_t m0, size_t m1) {
        const int rows = static_cast<int>(m1 - m0);
        Real* o = out + m0 * OC;
        gemm<Real>(false, true, rows, OC, C, 1, inp + m0 * C, C, weight, C, 0, o, OC);
        if (bias) {
          for (int r = 0; r < rows; ++r) {
#pragma omp simd
            for (int j = 0; j < OC; ++j) o[static_cast<size_t>(r) * OC + j] += bias[j];
          }
        }
      },
      64);
}

template <typename Real>
void add_bias(Real* out, const Real* bias, int M, int OC) {
  if (!bias) return;
  parallel_chunks(
      static_cast<size_t>(M),
      [&](size_t m0, size_t m1) {
        for (size_t m = m0; m < m1; ++m) {
          Real* o = out + m * OC;
#pragma omp simd
          for (int j = 0; j < OC; ++j) o[j] += bias[j];
        }
      },
      64);
}

template <typename Real>
void linear_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                     const Real* weight, int M, int C, int OC) {
  if (dinp) {
    parallel_chunks(
        static_cast<size_t>(M),
        [&](size_t m0, size_t m1) {
          gemm<Real>(false, false, static_cast<int>(m1 - m0), C, OC, 1, dout + m0 * OC, OC, weight, C, 1,
                     dinp + m0 * C, C);
        },
        64);
  }
  if (dweight || dbias) {
    parallel_chunks(
        static_cast<size_t>(OC),
        [&](size_t o0, size_t o1) {
          const int cols = static_cast<int>(o1 - o0);
          if (dweight) gemm<Real>(true, false, cols, C, M, 1, dout + o0, OC, inp, C, 1, dweight + o0 * C, C);
          if (dbias) {
            for (int m = 0; m < M; ++m) {
              const Real* row = dout + static_cast<size_t>(m) * OC + o0;
#pragma omp simd
              for (int j = 0; j < cols; ++j) dbias[o0 + j] += row[j];
            }
          }
        },
        16);
  }
}

template void add_bias<float>(float*, const float*, int, int);
template void add_bias<double>(double*, const double*, int, int);
template void linear_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void linear_forward<double>(double*, const double*, const double*, const double*, int, int, int);
template void linear_backward<float>(float*, float*, float*, const float*, const float*, const float*, int,
                                     int, int);
template void linear_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                      int, int, int);

}  // namespace triad
