#pragma once
// Row-major GEMM on BLAS: C (M x N) = alpha * op(A) * op(B) + beta * C, for float (sgemm) and double
// (dgemm, used by the finite-difference tests). gemm() is one single-threaded BLAS call; callers split
// work across threads themselves (core/parallel.h).

#include "triad/core/blas.h"

namespace triad {

template <typename T>
inline void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
                 int ldb, T beta, T* c, int ldc) {
  if (m <= 0 || n <= 0) return;
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  if constexpr (sizeof(T) == 4) {
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

}  // namespace triad
