#include "triad/kernels/layernorm.h"

#include <cmath>
#include <vector>

#include "triad/core/parallel.h"

namespace triad {

template <typename Real>
void layernorm_forward(Real* out, Real* mean, Real* rstd, const Real* inp, const Real* weight,
                       const Real* bias, int N, int C) {
  parallel_chunks(
      static_cast<size_t>(N),
      [&](size_t n0, size_t n1) {
        for (size_t n = n0; n < n1; ++n) {
          const Real* x = inp + n * C;
          Real m = 0;
#pragma omp simd reduction(+ : m)
          for (int i = 0; i < C; ++i) m += x[i];
          m /= C;
          Real v = 0;
#pragma omp simd reduction(+ : v)
          for (int i = 0; i < C; ++i) v += (x[i] - m) * (x[i] - m);
          v /= C;
          const Real s = Real(1) / std::sqrt(v + Real(1e-5));
          Real* o = out + n * C;
#pragma omp simd
          for (int i = 0; i < C; ++i) o[i] = (x[i] - m) * s * weight[i] + bias[i];
          mean[n] = m;
          rstd[n] = s;
        }
      },
      32);
}

template <typename Real>
void layernorm_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                        const Real* weight, const Real* mean, const Real* rstd, int N, int C) {
  const int nt = threads();
  std::vector<Real> partial(static_cast<size_t>(nt) * 2 * C, Real(0));  // per thread: dweight, dbias
  parallel_chunks(
      static_cast<size_t>(N),
      [&](size_t n0, size_t n1) {
        Real* dw = partial.data() + static_cast<size_t>(omp_get_thread_num()) * 2 * C;
        Real* db = dw + C;
        for (size_t n = n0; n < n1; ++n) {
          const Real* x = inp + n * C;
          const Real* dy = dout + n * C;
          Real* dx = dinp + n * C;
          const Real m = mean[n], s = rstd[n];
          // dnorm = dy * weight; dx = s * (dnorm - mean(dnorm) - norm * mean(dnorm * norm))
          Real dnorm_mean = 0, dnorm_norm_mean = 0;
#pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
          for (int i = 0; i < C; ++i) {
            const Real norm = (x[i] - m) * s;
            const Real dnorm = dy[i] * weight[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
          }
          dnorm_mean /= C;
          dnorm_norm_mean /= C;
#pragma omp simd
          for (int i = 0; i < C; ++i) {
            const Real norm = (x[i] - m) * s;
            const Real dnorm = dy[i] * weight[i];
            dx[i] += s * (dnorm - dnorm_mean - norm * dnorm_norm_mean);
            dw[i] += dy[i] * norm;
            db[i] += dy[i];
          }
        }
      },
      32);
  for (int t = 0; t < nt; ++t) {
    const Real* dw = partial.data() + static_cast<size_t>(t) * 2 * C;
    for (int i = 0; i < C; ++i) {
      dweight[i] += dw[i];
      dbias[i] += dw[C + i];
    }
  }
}

template void layernorm_forward<float>(float*, float*, float*, const float*, const float*, const float*, int,
                                       int);
template void layernorm_forward<double>(double*, double*, double*, const double*, const double*,
                                        const double*, int, int);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, int, int);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*,
                                         const double*, const double*, const double*, int, int);

}  // namespace triad
