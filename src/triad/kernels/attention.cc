#include "triad/kernels/attention.h"

#include <algorithm>
#include <cmath>

#include <vector>
#include "triad/core/vector_math.h"

#include "triad/core/parallel.h"
#include "triad/kernels/gemm.h"

namespace triad {

namespace {

constexpr int kTile = 64;  // queries per tile

// Row t of a causal softmax: columns [0, t] normalised, the rest zero.
template <typename Real>
void causal_softmax_row(Real* p, int t, int T) {
  Real max = p[0];
  for (int j = 1; j <= t; ++j) max = std::max(max, p[j]);
  Real sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j <= t; ++j) {
    p[j] = std::exp(p[j] - max);
    sum += p[j];
  }
  const Real inv = Real(1) / sum;
#pragma omp simd
  for (int j = 0; j <= t; ++j) p[j] *= inv;
  std::fill(p + t + 1, p + T, Real(0));
}

}  // namespace

template <typename Real>
void attention_probs(Real* att, const Real* qkv, int B, int T, int C, int NH) {
  const int HS = C / NH, C3 = 3 * C;
  const Real scale = Real(1) / std::sqrt(Real(HS));
  parallel_chunks(static_cast<size_t>(B) * NH, [&](size_t p0, size_t p1) {
    for (size_t pair = p0; pair < p1; ++pair) {
      const int b = static_cast<int>(pair) / NH, h = static_cast<int>(pair) % NH;
      const Real* q = qkv + static_cast<size_t>(b) * T * C3 + h * HS;
      const Real* k = q + C;
      Real* p = att + pair * T * T;
      for (int r0 = 0; r0 < T; r0 += kTile) {
        const int r1 = std::min(T, r0 + kTile), rows = r1 - r0;
        gemm<Real>(false, true, rows, r1, HS, scale, q + static_cast<size_t>(r0) * C3, C3, k, C3, 0,
                   p + static_cast<size_t>(r0) * T, T);
        for (int t = r0; t < r1; ++t) causal_softmax_row(p + static_cast<size_t>(t) * T, t, T);
      }
    }
  });
}

template <typename Real>
void attention_values(Real* out, const Real* att, const Real* qkv, int B, int T, int C, int NH) {
  const int HS = C / NH, C3 = 3 * C;
  parallel_chunks(static_cast<size_t>(B) * NH, [&](size_t p0, size_t p1) {
    for (size_t pair = p0; pair < p1; ++pair) {
      const int b = static_cast<int>(pair) / NH, h = static_cast<int>(pair) % NH;
      const Real* v = qkv + static_cast<size_t>(b) * T * C3 + 2 * C + h * HS;
      const Real* p = att + pair * T * T;
      Real* y = out + static_cast<size_t>(b) * T * C + h * HS;
      for (int r0 = 0; r0 < T; r0 += kTile) {
        const int r1 = std::min(T, r0 + kTile), rows = r1 - r0;
        gemm<Real>(false, false, rows, HS, r1, 1, p + static_cast<size_t>(r0) * T, T, v, C3, 0,
                   y + static_cast<size_t>(r0) * C, C);
      }
    }
  });
}

template <typename Real>
void attention_backward(Real* dqkv, const Real* dout, const Real* qkv, const Real* att, int B, int T, int C,
                        int NH, Real* datt) {
  const int HS = C / NH, C3 = 3 * C;
  const Real scale = Real(1) / std::sqrt(Real(HS));
  parallel_chunks(static_cast<size_t>(B) * NH, [&](size_t p0, size_t p1) {
    std::vector<Real> scratch(static_cast<size_t>(T) * T);
    Real* ds = scratch.data();  // dP, then dS in place
    for (size_t pair = p0; pair < p1; ++pair) {
      const int b = static_cast<int>(pair) / NH, h = static_cast<int>(pair) % NH;
      const size_t base = static_cast<size_t>(b) * T * C3 + h * HS;
      const Real *q = qkv + base, *k = q + C, *v = q + 2 * C;
      Real *dq = dqkv + base, *dk = dq + C, *dv = dq + 2 * C;
      const Real* p = att + pair * T * T;
      const Real* dy = dout + static_cast<size_t>(b) * T * C + h * HS;
      // dP = dY · V^T and dS = P ⊙ (dP - rowsum(P ⊙ dP)), row tile by row tile
      for (int r0 = 0; r0 < T; r0 += kTile) {
        const int r1 = std::min(T, r0 + kTile), rows = r1 - r0;
        gemm<Real>(false, true, rows, r1, HS, 1, dy + static_cast<size_t>(r0) * C, C, v, C3, 0,
                   ds + static_cast<size_t>(r0) * T, T);
        for (int t = r0; t < r1; ++t) {
          const Real* pr = p + static_cast<size_t>(t) * T;
          Real* dr = ds + static_cast<size_t>(t) * T;
          if (datt) {
            Real* out = datt + pair * T * T + static_cast<size_t>(t) * T;
            std::copy(dr, dr + t + 1, out);
            std::fill(out + t + 1, out + T, Real(0));
          }
          Real dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int j = 0; j <= t; ++j) dot += pr[j] * dr[j];
#pragma omp simd
          for (int j = 0; j <= t; ++j) dr[j] = pr[j] * (dr[j] - dot);
          std::fill(dr + t + 1, dr + r1, Real(0));
        }
        // dQ[rows] += scale · dS[rows, :r1] · K[:r1]
        gemm<Real>(false, false, rows, HS, r1, scale, ds + static_cast<size_t>(r0) * T, T, k, C3, 1,
                   dq + static_cast<size_t>(r0) * C3, C3);
      }
      // Per key tile [c0, c1): only queries t >= c0 see it.
      for (int c0 = 0; c0 < T; c0 += kTile) {
        const int c1 = std::min(T, c0 + kTile), cols = c1 - c0, seen = T - c0;
        // dV[keys] += P[c0:, keys]^T · dY[c0:];  dK[keys] += scale · dS[c0:, keys]^T · Q[c0:]
        gemm<Real>(true, false, cols, HS, seen, 1, p + static_cast<size_t>(c0) * T + c0, T,
                   dy + static_cast<size_t>(c0) * C, C, 1, dv + static_cast<size_t>(c0) * C3, C3);
        gemm<Real>(true, false, cols, HS, seen, scale, ds + static_cast<size_t>(c0) * T + c0, T,
                   q + static_cast<size_t>(c0) * C3, C3, 1, dk + static_cast<size_t>(c0) * C3, C3);
      }
    }
  });
}

void attention_decode_step(float* y, const float* q_all, const float* k_cache, const float* v_cache, int t,
                           int C, int NH, float* scores) {
  const int HS = C / NH;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  for (int h = 0; h < NH; ++h) {
    const float* q = q_all + h * HS;
    float max = -INFINITY;
    for (int j = 0; j <= t; ++j) {
      const float* k = k_cache + static_cast<size_t>(j) * C + h * HS;
      float s = 0;
      for (int i = 0; i < HS; ++i) s += q[i] * k[i];
      scores[j] = s * scale;
      max = std::max(max, scores[j]);
    }
    float sum = 0;
    for (int j = 0; j <= t; ++j) sum += scores[j] = std::exp(scores[j] - max);
    float* yh = y + h * HS;
    std::fill(yh, yh + HS, 0.0f);
    for (int j = 0; j <= t; ++j) {
      const float p = scores[j] / sum;
      const float* v = v_cache + static_cast<size_t>(j) * C + h * HS;
      for (int i = 0; i < HS; ++i) yh[i] += p * v[i];
    }
  }
}

template void attention_probs<float>(float*, const float*, int, int, int, int);
template void attention_probs<double>(double*, const double*, int, int, int, int);
template void attention_values<float>(float*, const float*, const float*, int, int, int, int);
template void attention_values<double>(double*, const double*, const double*, int, int, int, int);
template void attention_backward<float>(float*, const float*, const float*, const float*, int, int, int, int,
                                        float*);
template void attention_backward<double>(double*, const double*, const double*, const double*, int, int, int,
                                         int, double*);

}  // namespace triad
