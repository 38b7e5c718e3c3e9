#pragma once
// The least-squares fits of the perturbation explainers, solved by LAPACK (dgels: QR of the weighted
// design matrix).
//
// - weighted_ridge: LIME's surrogate, scikit-learn's Ridge(alpha, fit_intercept=True) with sample weights:
//   minimise Σ_i w_i (y_i - b - x_i·β)² + α |β|² (the intercept b not penalised). As scikit-learn does, X
//   and y are centred by their weighted means, which makes b = ȳ - x̄·β exact, and the rest is an ordinary
//   least-squares problem on rows scaled by √w_i with √α·I appended.
// - shapley_fit: KernelSHAP's (Lundberg & Lee 2017) weighted regression of f(z) - f(∅) on coalitions z with
//   the constraint Σ φ = f(all) - f(∅) (the efficiency axiom), by eliminating the last φ as the shap package
//   does. With every coalition and the Shapley kernel weights the solution is the exact Shapley values.

#include <vector>

namespace triad::explain {

struct RidgeFit {
  std::vector<double> coef;
  double intercept = 0;
};
// X: n x d row-major; y, w: n. w_i >= 0, α >= 0.
RidgeFit weighted_ridge(const std::vector<double>& X, const std::vector<double>& y,
                        const std::vector<double>& w, int n, int d, double alpha);

// Z: n x M (0/1) row-major coalitions (neither empty nor full); y: f(z) - f(∅); w: weights; total: f(all) -
// f(∅). Returns φ (M values summing to total).
std::vector<double> shapley_fit(const std::vector<double>& Z, const std::vector<double>& y,
                                const std::vector<double>& w, int n, int M, double total);

// The Shapley kernel weight of a coalition of `size` players out of M (0 < size < M):
// (M - 1) / (C(M, size) · size · (M - size)).
double shapley_kernel(int M, int size);

}  // namespace triad::explain
