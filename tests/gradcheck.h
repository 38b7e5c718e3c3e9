#pragma once
// Finite-difference gradient checks in double precision: the analytic gradient of a scalar function must
// match central differences (f(x + h) - f(x - h)) / 2h element by element.

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace triad::testing {

inline std::vector<double> random_vector(size_t n, uint32_t seed, double scale = 1.0) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Checks every element of `x` (or `max_checks` spread over it) against `analytic`.
inline void expect_gradient(const std::string& what, std::vector<double>& x,
                            const std::vector<double>& analytic, const std::function<double()>& f,
                            double tolerance = 1e-6, size_t max_checks = 200) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const double h = 1e-5;
  const size_t stride = std::max<size_t>(1, x.size() / max_checks);
  for (size_t i = 0; i < x.size(); i += stride) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = f();
    x[i] = saved - h;
    const double down = f();
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    const double scale = std::max({1.0, std::fabs(numeric), std::fabs(analytic[i])});
    ASSERT_NEAR(analytic[i] / scale, numeric / scale, tolerance) << what << "[" << i << "]";
  }
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

}  // namespace triad::testing
