#pragma once
// Fairness metrics of a binary classifier's scores over identity subgroups (docs/fairness.md, "Metrics").
//
// Inputs: per example the score (the probability of the positive class, in [0, 1]), the label (1, 0 or
// kNoLabel) and its identity subgroups (fairness/subgroups.h). Every metric is one slot of a flat vector
// of doubles, NaN where it is undefined; fairness/report.h turns the vector into a report with names and
// bootstrap intervals.
//
// Definitions (Borkan et al. 2019, the Jigsaw Unintended Bias competition; Hardt et al. 2016):
// - AUC: the Mann-Whitney statistic, P(score of a positive > score of a negative) with a tie counted 1/2,
//   which is exactly scikit-learn's roc_auc_score.
// - Per subgroup g (its members D_g, the background D \ D_g):
//     subgroup AUC  on D_g;
//     BPSN AUC      on the negatives of D_g and the positives of the background;
//     BNSP AUC      on the positives of D_g and the negatives of the background;
//   each is undefined (NaN) unless both of its sets are non-empty: a subgroup with one class only has no
//   subgroup AUC, and no BNSP (all negative) or no BPSN (all positive); an empty subgroup has none.
//   positive rate = P(score >= threshold) over all members (labelled or not), TPR over its positives, FPR
//   over its negatives; ECE over its labelled members (below).
// - Power mean M_p over subgroups of each of the three AUCs, p = -5: (mean_g m_g^p)^(1/p), over the
//   subgroups where that AUC is defined (of every attribute); a subgroup AUC of 0 makes it 0.
//   Final bias metric = 0.25 overall AUC + 0.25 (M_p(subgroup) + M_p(BPSN) + M_p(BNSP)).
// - Per attribute, over its groups (the subgroups naming it) where the value is defined, max - min:
//     subgroup AUC gap (the paper's Table 5), demographic parity difference (positive rate), equal
//     opportunity difference (TPR), FPR gap, and equalized odds = max(TPR gap, FPR gap); and the BPSN and
//     BNSP AUC gaps, which see a shift of a group's scores (its non-toxic rows scored as high as the
//     background's toxic ones) that the subgroup AUC, a ranking within the group, cannot.
//   With more than two groups max - min is the largest gap between any two of them (as fairlearn's
//   "between_groups"); examples that mention no group of the attribute are not a group. A gap needs at
//   least two groups where the value is defined, else it is undefined.
// - ECE (expected calibration error) with B equal-width bins: bin k = min(floor(score * B), B - 1), i.e.
//   [k/B, (k+1)/B) with the last bin closed; ECE = sum_k (n_k / n) |mean label_k - mean score_k|
//   = sum_k |sum labels_k - sum scores_k| / n. Overall, per subgroup, and its max over subgroups.
// Ties: AUC counts them 1/2; a score equal to the threshold is predicted positive.
//
// Everything is computed under integer example weights (how often each example is in the sample: all 1
// for the data as given, the counts of a bootstrap resample otherwise), in one pass over the examples
// sorted once by score, O(n + sum of subgroup sizes) per evaluation.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "triad/fairness/subgroups.h"

namespace triad::fairness {

inline constexpr int8_t kNoLabel = -1;  // the label is unknown: only the positive rate can use the example

struct MetricOptions {
  double threshold = 0.5;    // score >= threshold is a positive prediction (parity, TPR, FPR)
  int ece_bins = 10;         // equal-width calibration bins over [0, 1]
  int bootstrap = 1000;      // resamples for the intervals; 0: none
  uint64_t seed = 0;         // of the resampling; the same seed gives the same intervals on any thread count
  double confidence = 0.95;  // of the percentile intervals
  double power = -5;         // of the generalized means in the final bias metric
};

// The slots of the metric vector: the global ones, then per subgroup, then per attribute.
enum GlobalMetric {
  kOverallAuc,
  kOverallEce,
  kPowerMeanSubgroupAuc,
  kPowerMeanBpsnAuc,
  kPowerMeanBnspAuc,
  kFinalBias,
  kEceMax,
  kGlobalMetrics
};
enum GroupMetric { kSubgroupAuc, kBpsnAuc, kBnspAuc, kPositiveRate, kTpr, kFpr, kEce, kGroupMetrics };
enum AttributeMetric {
  kSubgroupAucGap,
  kDpd,
  kEod,
  kFprGap,
  kEqualizedOdds,
  kBpsnAucGap,
  kBnspAucGap,
  kAttributeMetrics
};

// Weighted counts of one subgroup (the data as given).
struct GroupCounts {
  int64_t members = 0, positives = 0, negatives = 0, unlabelled = 0;
};

class MetricEngine {
 public:
  // `labels` is empty (all unknown) or one per score; every subgroup has one member flag per score. Scores
  // must be finite and in [0, 1]; `options` must be valid (check_metric_options).
  MetricEngine(std::span<const double> scores, std::span<const int8_t> labels,
               const std::vector<Subgroup>& subgroups, const MetricOptions& options);

  size_t examples() const { return n_; }
  size_t slots() const {
    return kGlobalMetrics + groups_ * kGroupMetrics + attributes_.size() * kAttributeMetrics;
  }
  static size_t global_slot(GlobalMetric m) { return m; }
  size_t group_slot(size_t group, GroupMetric m) const { return kGlobalMetrics + group * kGroupMetrics + m; }
  size_t attribute_slot(size_t attribute, AttributeMetric m) const {
    return kGlobalMetrics + groups_ * kGroupMetrics + attribute * kAttributeMetrics + m;
  }
  // The distinct attributes of the subgroups in order of first appearance, and each one's subgroups.
  const std::vector<std::string>& attributes() const { return attributes_; }
  const std::vector<std::vector<size_t>>& attribute_groups() const { return attribute_groups_; }
  GroupCounts counts(size_t group) const;
  int64_t labelled() const { return labelled_; }
  int64_t positives() const { return positives_; }

  // Every metric with each example counted weights[i] times (one weight per example); NaN where undefined.
  std::vector<double> evaluate(std::span<const uint32_t> weights) const;
  // With every example once: the metrics of the data as given.
  std::vector<double> evaluate() const;
  // `resamples` bootstrap resamples (n examples drawn with replacement) x slots(), row-major. Resample r
  // draws from its own generator seeded by (seed, r): the result does not depend on the thread count.
  std::vector<double> bootstrap(int resamples, uint64_t seed) const;
  // The example counts of resample r (what bootstrap() evaluates), for tests.
  std::vector<uint32_t> resample_weights(int r, uint64_t seed) const;

 private:
  struct Scratch;
  void evaluate_into(std::span<const uint32_t> weights, Scratch& scratch, double* out) const;

  MetricOptions options_;
  size_t n_ = 0, groups_ = 0;
  int64_t labelled_ = 0, positives_ = 0;
  std::vector<double> scores_;
  std::vector<int8_t> labels_;
  std::vector<uint32_t> block_;  // per example: its tie block, 0.. in ascending score
  uint32_t blocks_ = 0;
  std::vector<uint16_t> bin_;                   // per example: its calibration bin
  std::vector<uint8_t> predicted_;              // per example: score >= threshold
  std::vector<std::vector<uint32_t>> members_;  // per subgroup: its members in ascending score
  std::vector<std::string> attributes_;
  std::vector<std::vector<size_t>> attribute_groups_;
};

// A usage error naming the option unless threshold in [0, 1], ece_bins in [1, 10000], bootstrap in [0,
// 100000], confidence in (0, 1) and power < 0.
void check_metric_options(const MetricOptions& options);

// ROC AUC of `scores` against 0/1 `labels` (kNoLabel ignored); NaN unless both classes occur.
double roc_auc(std::span<const double> scores, std::span<const int8_t> labels);

}  // namespace triad::fairness
