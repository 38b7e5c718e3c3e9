#include "triad/fairness/statistics.h"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>

#include "triad/core/error.h"

namespace triad::fairness {

double quantile_sorted(std::span<const double> sorted, double q) {
  if (sorted.empty()) return kNaN;
  const double position = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  if (below + 1 >= sorted.size()) return sorted.back();
  const double fraction = position - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

Interval percentile_interval(std::vector<double> values, double confidence) {
  std::erase_if(values, [](double v) { return std::isnan(v); });
  std::sort(values.begin(), values.end());
  const double tail = (1 - confidence) / 2;
  return {quantile_sorted(values, tail), quantile_sorted(values, 1 - tail), static_cast<int>(values.size())};
}

PairedTest paired_t_test(std::span<const double> baseline, std::span<const double> mitigated,
                         double confidence) {
  if (baseline.size() != mitigated.size())
    fail("a paired test needs as many mitigated runs as baseline runs, got {} and {}", mitigated.size(),
         baseline.size());
  if (baseline.size() < 2) fail("a paired test needs at least 2 pairs of runs, got {}", baseline.size());
  PairedTest r;
  r.n = static_cast<int>(baseline.size());
  double sum_d = 0;
  for (int i = 0; i < r.n; ++i) {
    if (!std::isfinite(baseline[i]) || !std::isfinite(mitigated[i]))
      fail("pair {}: values must be finite, got {} and {}", i + 1, baseline[i], mitigated[i]);
    r.baseline_mean += baseline[i] / r.n;
    r.mitigated_mean += mitigated[i] / r.n;
    sum_d += mitigated[i] - baseline[i];
  }
  r.mean_difference = sum_d / r.n;
  double ss = 0;
  for (int i = 0; i < r.n; ++i) {
    const double e = mitigated[i] - baseline[i] - r.mean_difference;
    ss += e * e;
  }
  r.df = r.n - 1;
  r.sd_difference = std::sqrt(ss / r.df);
  const double se = r.sd_difference / std::sqrt(static_cast<double>(r.n));
  const boost::math::students_t dist(r.df);
  const double critical = boost::math::quantile(dist, (1 + confidence) / 2);
  r.ci_lo = r.mean_difference - critical * se;
  r.ci_hi = r.mean_difference + critical * se;
  // Equal differences up to rounding (0.96 - 0.92 and 0.88 - 0.84 differ in the last bit) give an sd of
  // ~1e-17 and a p of ~1e-32 from the formula: a "significant" result that only says the metric moves in
  // steps. Below a relative 1e-9 the sd is taken as 0 and p is undefined, not 0.
  double largest = 0;
  for (int i = 0; i < r.n; ++i) largest = std::max(largest, std::abs(mitigated[i] - baseline[i]));
  r.equal_differences = r.sd_difference <= 1e-9 * largest;  // all zero too: 0 <= 0
  if (!r.equal_differences) {
    r.t = r.mean_difference / se;
    r.p = std::min(1.0, 2 * boost::math::cdf(boost::math::complement(dist, std::abs(r.t))));
  } else if (r.mean_difference != 0) {
    r.t = std::copysign(std::numeric_limits<double>::infinity(), r.mean_difference);
    r.p = kNaN;
  } else {
    r.t = r.p = kNaN;
  }
  return r;
}

}  // namespace triad::fairness
