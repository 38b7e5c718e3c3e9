#pragma once
// The statistics behind the fairness report's intervals and its comparison of runs: percentile bootstrap
// intervals and the paired t-test over seeds (docs/fairness.md, "Metrics").

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace triad::fairness {

// What a statistic is when it is undefined (an AUC over one class, a quantile of nothing).
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The q-quantile (q in [0, 1]) of sorted `values` by linear interpolation between order statistics, as
// numpy.percentile's default ("linear"): position q (m - 1) of the m values. NaN when there are none.
double quantile_sorted(std::span<const double> sorted, double q);

struct Interval {
  double lo, hi;  // NaN when no resample defined the metric
  int resamples;  // resamples in which the metric was defined (not NaN)
};
// The percentile interval at `confidence` of the defined (non-NaN) values among `values`: the
// (1 - confidence)/2 and (1 + confidence)/2 quantiles.
Interval percentile_interval(std::vector<double> values, double confidence);

// A paired t-test of mitigated vs baseline over runs paired by position (the same seed, say).
// d_i = mitigated_i - baseline_i; t = mean(d) / (sd(d) / sqrt(n)) with sd over n - 1; df = n - 1; the
// two-sided p = 2 P(T_df > |t|) (Student's t from Boost.Math); the interval of the mean difference is
// mean(d) -/+ t_{df, (1 + confidence)/2} sd(d) / sqrt(n). As scipy.stats.ttest_rel(mitigated, baseline),
// except when all differences are equal (sd(d) <= 1e-9 max |d_i|, rounding included): scipy gives p = 0
// (or ~1e-32 from rounding), here p is NaN, undefined — n equal differences say nothing about the spread
// over seeds — and t is +-inf (NaN when every difference is zero).
struct PairedTest {
  int n = 0;  // pairs
  double baseline_mean = 0, mitigated_mean = 0;
  double mean_difference = 0, ci_lo = 0, ci_hi = 0;  // mitigated - baseline
  double sd_difference = 0, t = 0, df = 0, p = 0;
  bool equal_differences = false;  // every d_i equal up to rounding: p undefined
};
// Needs at least two pairs and equal lengths (else an Error); values must be finite.
PairedTest paired_t_test(std::span<const double> baseline, std::span<const double> mitigated,
                         double confidence = 0.95);

}  // namespace triad::fairness
