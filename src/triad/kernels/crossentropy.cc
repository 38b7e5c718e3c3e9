#include "triad/kernels/crossentropy.h"

#include <cmath>

#include "triad/core/vector_math.h"

#include "triad/core/parallel.h"

namespace triad {

template <typename Real>
void crossentropy_forward(Real* losses, Real* lse, const Real* logits, const int32_t* targets, int N, int V) {
  parallel_chunks(
      static_cast<size_t>(N),
      [&](size_t n0, size_t n1) {
        for (size_t n = n0; n < n1; ++n) {
          const Real* x = logits + n * V;
          Real max = x[0];
#pragma omp simd reduction(max : max)
          for (int v = 0; v < V; ++v) max = x[v] > max ? x[v] : max;
          Real sum = 0;
#pragma omp simd reduction(+ : sum)
          for (int v = 0; v < V; ++v) sum += std::exp(x[v] - max);
          lse[n] = max + std::log(sum);
          losses[n] = lse[n] - x[targets[n]];
        }
      },
      8);
}

template <typename Real>
void crossentropy_backward(Real* dlogits, const Real* logits, const Real* lse, const int32_t* targets,
                           Real scale, int N, int V) {
  parallel_chunks(
      static_cast<size_t>(N),
      [&](size_t n0, size_t n1) {
        for (size_t n = n0; n < n1; ++n) {
          const Real* x = logits + n * V;
          Real* d = dlogits + n * V;
          const Real l = lse[n];
#pragma omp simd
          for (int v = 0; v < V; ++v) d[v] = scale * std::exp(x[v] - l);
          d[targets[n]] -= scale;
        }
      },
      8);
}

template void crossentropy_forward<float>(float*, float*, const float*, const int32_t*, int, int);
template void crossentropy_forward<double>(double*, double*, const double*, const int32_t*, int, int);
template void crossentropy_backward<float>(float*, const float*, const float*, const int32_t*, float, int,
                                           int);
template void crossentropy_backward<double>(double*, const double*, const double*, const int32_t*, double,
                                            int, int);

}  // namespace triad
