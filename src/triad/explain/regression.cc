#include "triad/explain/regression.h"

#include <cmath>

#include "triad/core/error.h"

extern "C" void dgels_(const char* trans, const int* m, const int* n, const int* nrhs, double* a,
                       const int* lda, double* b, const int* ldb, double* work, const int* lwork, int* info);

namespace triad::explain {

namespace {

// Least squares min |A x - b| for A rows x cols given row-major; returns x (cols).
std::vector<double> least_squares(const std::vector<double>& A_rows, std::vector<double> b, int rows,
                                  int cols) {
  if (cols == 0) return {};
  if (rows < cols) fail("internal: least squares with {} equations for {} unknowns", rows, cols);
  std::vector<double> A(static_cast<size_t>(rows) * cols);  // LAPACK's column-major
  for (int i = 0; i < rows; ++i) {
    for (int j = 0; j < cols; ++j)
      A[static_cast<size_t>(j) * rows + i] = A_rows[static_cast<size_t>(i) * cols + j];
  }
  const char trans = 'N';
  const int nrhs = 1;
  int info = 0, lwork = -1;
  double query = 0;
  dgels_(&trans, &rows, &cols, &nrhs, A.data(), &rows, b.data(), &rows, &query, &lwork, &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(std::max(1, lwork));
  dgels_(&trans, &rows, &cols, &nrhs, A.data(), &rows, b.data(), &rows, work.data(), &lwork, &info);
  if (info != 0) fail("least squares (LAPACK dgels): the design matrix is rank deficient (info {})", info);
  b.resize(cols);
  return b;
}

}  // namespace

RidgeFit weighted_ridge(const std::vector<double>& X, const std::vector<double>& y,
                        const std::vector<double>& w, int n, int d, double alpha) {
  double wsum = 0;
  std::vector<double> xmean(d, 0.0);
  double ymean = 0;
  for (int i = 0; i < n; ++i) {
    wsum += w[i];
    ymean += w[i] * y[i];
    for (int j = 0; j < d; ++j) xmean[j] += w[i] * X[static_cast<size_t>(i) * d + j];
  }
  if (!(wsum > 0)) fail("internal: weighted ridge with no weight");
  ymean /= wsum;
  for (double& m : xmean) m /= wsum;
  const int rows = n + d;
  std::vector<double> A(static_cast<size_t>(rows) * d, 0.0), b(rows, 0.0);
  for (int i = 0; i < n; ++i) {
    const double s = std::sqrt(w[i]);
    for (int j = 0; j < d; ++j)
      A[static_cast<size_t>(i) * d + j] = s * (X[static_cast<size_t>(i) * d + j] - xmean[j]);
    b[i] = s * (y[i] - ymean);
  }
  for (int j = 0; j < d; ++j) A[static_cast<size_t>(n + j) * d + j] = std::sqrt(alpha);
  RidgeFit fit;
  fit.coef = least_squares(A, b, rows, d);
  fit.intercept = ymean;
  for (int j = 0; j < d; ++j) fit.intercept -= xmean[j] * fit.coef[j];
  return fit;
}

double shapley_kernel(int M, int size) {
  // C(M, size) in floating point (M is a word count: at most a few hundred).
  const double log_choose = std::lgamma(M + 1.0) - std::lgamma(size + 1.0) - std::lgamma(M - size + 1.0);
  return (M - 1.0) / (std::exp(log_choose) * size * (M - size));
}

std::vector<double> shapley_fit(const std::vector<double>& Z, const std::vector<double>& y,
                                const std::vector<double>& w, int n, int M, double total) {
  if (M == 1) return {total};
  // φ_M = total - Σ_{j<M} φ_j:  y - z_M total = Σ_{j<M} (z_j - z_M) φ_j.
  const int d = M - 1;
  std::vector<double> A(static_cast<size_t>(n) * d), b(n);
  for (int i = 0; i < n; ++i) {
    const double* z = Z.data() + static_cast<size_t>(i) * M;
    const double s = std::sqrt(w[i]);
    for (int j = 0; j < d; ++j) A[static_cast<size_t>(i) * d + j] = s * (z[j] - z[d]);
    b[i] = s * (y[i] - z[d] * total);
  }
  std::vector<double> phi = least_squares(A, b, n, d);
  double rest = total;
  for (double p : phi) rest -= p;
  phi.push_back(rest);
  return phi;
}

}  // namespace triad::explain
