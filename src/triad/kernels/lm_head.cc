#include "triad/kernels/lm_head.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "triad/core/clock.h"
#include "triad/core/parallel.h"
#include "triad/core/vector_math.h"
#include "triad/kernels/gemm.h"

namespace triad {

namespace {

// out (N, cols), leading dimension ld, = x · wte[v0 : v0 + cols]^T; rows split across threads. Returns
// seconds.
template <typename Real>
double slice_logits(Real* out, int ld, const Real* x, const Real* wte, int v0, int cols, int N, int C) {
  const Clock::time_point t0 = Clock::now();
  parallel_chunks(
      static_cast<size_t>(N),
      [&](size_t n0, size_t n1) {
        gemm<Real>(false, true, static_cast<int>(n1 - n0), cols, C, 1, x + n0 * C, C,
                   wte + static_cast<size_t>(v0) * C, C, 0, out + n0 * ld, ld);
      },
      64);
  return seconds_since(t0);
}

// Folds one row of a slice into a running logsumexp: (max, sum) with sum = Σ exp(row - max) so far.
template <typename Real>
void fold_logsumexp(const Real* row, int cols, Real* running_max, Real* running_sum) {
  Real max = *running_max;
#pragma omp simd reduction(max : max)
  for (int j = 0; j < cols; ++j) max = row[j] > max ? row[j] : max;
  Real sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < cols; ++j) sum += std::exp(row[j] - max);
  *running_sum = *running_sum * std::exp(*running_max - max) + sum;
  *running_max = max;
}

// dx += d · wte[slice] (rows split); dwte[slice] += d^T · x (vocabulary rows split). d: (N, cols), ld.
template <typename Real>
void accumulate_slice_grads(Real* dx, Real* dwte, const Real* d, int ld, const Real* x, const Real* wte,
                            int v0, int cols, int N, int C) {
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
            fold_logsumexp(row, cols, &running_max[n], &running_sum[n]);
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
    accumulate_slice_grads(dx, dwte, d, ld, x, wte, v0, cols, N, C);
  }
  return seconds;
}

template <typename Real>
double lm_head_distill_loss(Real* losses, Real* lse, Real* stats, const Real* logits, Real* slice,
                            const Real* x, const Real* wte, const int32_t* targets,
                            const SoftTargets<Real>& teacher, int N, int C, int V) {
  const size_t rows = static_cast<size_t>(N);
  // Running logsumexps: the student's at T = 1 and at T, the teacher's at T; and the teacher-weighted
  // Σ exp(z_t / T - teacher_max) (z_t - z_s), rescaled with the teacher's sum.
  std::vector<Real> max(rows, -INFINITY), sum(rows, 0), student_max(rows, -INFINITY), student_sum(rows, 0);
  std::vector<Real> teacher_max(rows, -INFINITY), teacher_sum(rows, 0), weighted(rows, 0);
  const Real inv_t = 1 / teacher.temperature;
  const int width = vocab_slice_width(V);
  double seconds = 0;
  for (int v0 = 0; v0 < V; v0 += kVocabSlice) {
    const int cols = std::min(kVocabSlice, V - v0);
    const Real* in = logits ? logits + v0 : slice;
    const int ld = logits ? V : width;
    if (!logits) seconds += slice_logits(slice, ld, x, wte, v0, cols, N, C);
    slice_logits(teacher.slice, width, teacher.x, teacher.wte, v0, cols, N, teacher.C);
    parallel_chunks(
        rows,
        [&](size_t n0, size_t n1) {
          for (size_t n = n0; n < n1; ++n) {
            const Real *zs = in + n * ld, *zt = teacher.slice + n * width;
            fold_logsumexp(zs, cols, &max[n], &sum[n]);
            const int t = targets[n] - v0;
            if (t >= 0 && t < cols) losses[n] = -zs[t];  // the logsumexp is added below
            Real ms = student_max[n], mt = teacher_max[n];
            for (int j = 0; j < cols; ++j) {
              ms = std::max(ms, zs[j] * inv_t);
              mt = std::max(mt, zt[j] * inv_t);
            }
            Real ss = 0, st = 0, w = 0;
#pragma omp simd reduction(+ : ss, st, w)
            for (int j = 0; j < cols; ++j) {
              const Real e = std::exp(zt[j] * inv_t - mt);
              ss += std::exp(zs[j] * inv_t - ms);
              st += e;
              w += e * (zt[j] - zs[j]);
            }
            const Real rescale = std::exp(teacher_max[n] - mt);
            student_sum[n] = student_sum[n] * std::exp(student_max[n] - ms) + ss;
            teacher_sum[n] = teacher_sum[n] * rescale + st;
            weighted[n] = weighted[n] * rescale + w;
            student_max[n] = ms;
            teacher_max[n] = mt;
          }
        },
        8);
  }
  const Real A = teacher.weight, T = teacher.temperature;
  Real *student_lse = stats, *teacher_lse = stats + N, *hard = stats + 2 * rows;
  for (size_t n = 0; n < rows; ++n) {
    lse[n] = max[n] + std::log(sum[n]);
    hard[n] = losses[n] + lse[n];
    student_lse[n] = student_max[n] + std::log(student_sum[n]);
    teacher_lse[n] = teacher_max[n] + std::log(teacher_sum[n]);
    const Real kl = weighted[n] / teacher_sum[n] * inv_t - teacher_lse[n] + student_lse[n];
    losses[n] = (1 - A) * hard[n] + A * T * T * kl;
  }
  return seconds;
}

template <typename Real>
double lm_head_distill_backward(Real* dx, Real* dwte, Real* logits, Real* slice, const Real* x,
                                const Real* wte, const int32_t* targets, const Real* lse, const Real* stats,
                                const SoftTargets<Real>& teacher, Real scale, int N, int C, int V) {
  const Real inv_t = 1 / teacher.temperature;
  const Real hard_scale = scale * (1 - teacher.weight),
             soft_scale = scale * teacher.weight * teacher.temperature;
  const Real *student_lse = stats, *teacher_lse = stats + N;
  const int width = vocab_slice_width(V);
  double seconds = 0;
  for (int v0 = 0; v0 < V; v0 += kVocabSlice) {
    const int cols = std::min(kVocabSlice, V - v0);
    Real* d = logits ? logits + v0 : slice;
    const int ld = logits ? V : width;
    if (!logits) seconds += slice_logits(d, ld, x, wte, v0, cols, N, C);
    slice_logits(teacher.slice, width, teacher.x, teacher.wte, v0, cols, N, teacher.C);
    parallel_chunks(
        static_cast<size_t>(N),
        [&](size_t n0, size_t n1) {
          for (size_t n = n0; n < n1; ++n) {
            Real* row = d + n * ld;
            const Real* zt = teacher.slice + n * width;
            const Real l = lse[n], ls = student_lse[n], lt = teacher_lse[n];
#pragma omp simd
            for (int j = 0; j < cols; ++j) {
              row[j] = hard_scale * std::exp(row[j] - l) +
                       soft_scale * (std::exp(row[j] * inv_t - ls) - std::exp(zt[j] * inv_t - lt));
            }
            const int t = targets[n] - v0;
            if (t >= 0 && t < cols) row[t] -= hard_scale;
          }
        },
        8);
    accumulate_slice_grads(dx, dwte, d, ld, x, wte, v0, cols, N, C);
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
template double lm_head_distill_loss<float>(float*, float*, float*, const float*, float*, const float*,
                                            const float*, const int32_t*, const SoftTargets<float>&, int, int,
                                            int);
template double lm_head_distill_loss<double>(double*, double*, double*, const double*, double*, const double*,
                                             const double*, const int32_t*, const SoftTargets<double>&, int,
                                             int, int);
template double lm_head_distill_backward<float>(float*, float*, float*, float*, const float*, const float*,
                                                const int32_t*, const float*, const float*,
                                                const SoftTargets<float>&, float, int, int, int);
template double lm_head_distill_backward<double>(double*, double*, double*, double*, const double*,
                                                 const double*, const int32_t*, const double*, const double*,
                                                 const SoftTargets<double>&, double, int, int, int);

}  // namespace triad
