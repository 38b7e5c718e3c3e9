#include "triad/kernels/encoder.h"

#include <algorithm>

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

template <typename Real>
void embedding_lookup(Real* out, const int32_t* tokens, const Real* wte, int v0, int V, int N, int C) {
  parallel_chunks(
      static_cast<size_t>(N),
      [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          const int t = tokens[i] - v0;
          Real* o = out + i * C;
          if (t < 0 || t >= V) {
            std::fill(o, o + C, Real(0));
          } else {
            std::copy_n(wte + static_cast<size_t>(t) * C, C, o);
          }
        }
      },
      64);
}

template <typename Real>
void embedding_backward(Real* dwte, const Real* dout, const int32_t* tokens, int v0, int V, int N, int C) {
  parallel_chunks(
      static_cast<size_t>(C),
      [&](size_t c0, size_t c1) {
        for (size_t i = 0; i < static_cast<size_t>(N); ++i) {
          const int t = tokens[i] - v0;
          if (t < 0 || t >= V) continue;
          const Real* d = dout + i * C;
          Real* e = dwte + static_cast<size_t>(t) * C;
          for (size_t c = c0; c < c1; ++c) e[c] += d[c];
        }
      },
      64);
}

template <typename Real>
void position_add(Real* out, const Real* wpe, int B, int T, int C) {
  parallel_chunks(
      static_cast<size_t>(B) * T,
      [&](size_t i0, size_t i1) {
        for (size_t i = i0; i < i1; ++i) {
          const Real* p = wpe + (i % T) * C;
          Real* o = out + i * C;
#pragma omp simd
          for (int c = 0; c < C; ++c) o[c] += p[c];
        }
      },
      64);
}

template <typename Real>
void position_backward(Real* dwpe, const Real* dout, int B, int T, int C) {
  parallel_chunks(
      static_cast<size_t>(C),
      [&](size_t c0, size_t c1) {
        for (size_t i = 0; i < static_cast<size_t>(B) * T; ++i) {
          const Real* d = dout + i * C;
          Real* p = dwpe + (i % T) * C;
          for (size_t c = c0; c < c1; ++c) p[c] += d[c];
        }
      },
      64);
}

#define TRIAD_VOCAB_PARALLEL(Real)                                                                \
  template void embedding_lookup<Real>(Real*, const int32_t*, const Real*, int, int, int, int);   \
  template void embedding_backward<Real>(Real*, const Real*, const int32_t*, int, int, int, int); \
  template void position_add<Real>(Real*, const Real*, int, int, int);                            \
  template void position_backward<Real>(Real*, const Real*, int, int, int);
TRIAD_VOCAB_PARALLEL(float)
TRIAD_VOCAB_PARALLEL(double)
#undef TRIAD_VOCAB_PARALLEL

template void encoder_forward<float>(float*, const int32_t*, const float*, const float*, int, int, int);
template void encoder_forward<double>(double*, const int32_t*, const double*, const double*, int, int, int);
template void encoder_backward<float>(float*, float*, const float*, const int32_t*, int, int, int);
template void encoder_backward<double>(double*, double*, const double*, const int32_t*, int, int, int);

}  // namespace triad
