#include "triad/kernels/lm_head.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "triad/core/parallel.h"
#include "triad/core/vector_math.h"
#include "triad/kernels/gemm.h"

namespace triad {

namespace {

// out (N, cols), leading dimension ld, = x · wte[v0 : v0 + cols]^T; rows split across threads. Returns
// seconds.
template <typename Real>
double slice_logits(Real* out, int ld, const Real* x, const Real* wte, int v0, int cols, int N, int C) {
  auto t0 = std::chrono::steady_clock::now();
  parallel_chunks(
      static_cast<size_t>(N),
      [&](size_t n0, size_t n1) {
        gemm<Real>(false, true, static_cast<int>(n1 - n0), cols, C, 1, x + n0 * C, C,
                   wte + static_cast<size_t>(v0) * C, C, 0, out + n0 * ld, ld);
      },
      64);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

template <typename Real>
void lm_head_logits(Real* logits, const Real* x, const Real* wte, int N, int C, int V) {
  for (int v0 = 0; v0 < V; v0 += kVocabSlice)
    slice_logits(logits + v0, V, x, wte, v0, std::min(kVocabSlice, V - v0), N, C);
}

template <typename Real>
double lm_head_loss(Real* losses, Real* lse, const Real* logits, Real* slice, const Real* x, const Real* wte,
                    const int32_t* targets, int N, int C, int V) {
  std::vector<Real> running_max(static_cast<size_t>(N), -INFINITY), running_sum(static_cast<size_t>(N), 0);
  double seconds = 0;
  for (int v0 = 0; v0 < V; v0 += kVocabSlice) {
    const int cols = std::min(kVocabSlice, V - v0);
    const Real* in = logits ? logits + v0 : slice;
    const int ld = logits ? V : vocab_slice_width(V);
    if (!logits) seconds += slice_logits(slice, ld, x, wte, v0, cols, N, C);
    parallel_chunks(
        static_cast<size_t>(N),
        [&](size_t n0, size_t n1) {
          for (size_t n = n0; n < n1; ++n) {
            const Real* row = in + n * ld;
            Real max = running_max[n];
#pragma omp simd reduction(max : max)
            for (int j = 0; j < cols; ++j) max = row[j] > max ? row[j] : max;
            Real sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int j = 0; j < cols; ++j) sum += std::exp(row[j] - max);
            running_sum[n] = running_sum[n] * std::exp(running_max[n] - max) + sum;
            running_max[n] = max;
            const int t = targets[n] - v0;
            if (t >= 0 && t < cols) losses[n] = -row[t];  // the logsumexp is added below
          }
        },
        8);
  }
  for (int n = 0; n < N; ++n) {
    lse[n] = running_max[static_cast<size_t>(n)] + std::log(running_sum[static_cast<size_t>(n)]);
    losses[n] += lse[n];
  }
  return seconds;
}

template <typename Real>
double lm_head_backward(Real* dx, Real* dwte, Real* logits, Real* slice, const Real* x, const Real* wte,
                        const int32_t* targets, const Real* lse, Real scale, int N, int C, int V) {
  double seconds = 0;
  for (int v0 = 0; v0 < V; v0 += kVocabSlice) {
    const int cols = std::min(kVocabSlice, V - v0);
    Real* d = logits ? logits + v0 : slice;
    const int ld = logits ? V : vocab_slice_width(V);
    if (!logits) seconds += slice_logits(d, ld, x, wte, v0, cols, N, C);
    parallel_chunks(
        static_cast<size_t>(N),
        [&](size_t n0, size_t n1) {
          for (size_t n = n0; n < n1; ++n) {
            Real* row = d + n * ld;
            const Real l = lse[n];
#pragma omp simd
            for (int j = 0; j < cols; ++j) row[j] = scale * std::exp(row[j] - l);
            const int t = targets[n] - v0;
            if (t >= 0 && t < cols) row[t] -= scale;
          }
        },
        8);
    // dx += dlogits · wte[slice] (rows split); dwte[slice] += dlogits^T · x (vocabulary rows split)
    parallel_chunks(
        static_cast<size_t>(N),
        [&](size_t n0, size_t n1) {
          gemm<Real>(false, false, static_cast<int>(n1 - n0), C, cols, 1, d + n0 * ld, ld,
                     wte + static_cast<size_t>(v0) * C, C, 1, dx + n0 * C, C);
        },
        64);
    parallel_chunks(
        static_cast<size_t>(cols),
        [&](size_t c0, size_t c1) {
          gemm<Real>(true, false, static_cast<int>(c1 - c0), C, N, 1, d + c0, ld, x, C, 1,
                     dwte + (static_cast<size_t>(v0) + c0) * C, C);
        },
        16);
  }
  return seconds;
}

template void lm_head_logits<float>(float*, const float*, const float*, int, int, int);
template void lm_head_logits<double>(double*, const double*, const double*, int, int, int);
template double lm_head_loss<float>(float*, float*, const float*, float*, const float*, const float*,
                                    const int32_t*, int, int, int);
template double lm_head_loss<double>(double*, double*, const double*, double*, const double*, const double*,
                                     const int32_t*, int, int, int);
template double lm_head_backward<float>(float*, float*, float*, float*, const float*, const float*,
                                        const int32_t*, const float*, float, int, int, int);
template double lm_head_backward<double>(double*, double*, double*, double*, const double*, const double*,
                                         const int32_t*, const double*, double, int, int, int);

}  // namespace triad
