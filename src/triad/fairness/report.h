#pragma once
// The fairness report: every metric of fairness/metrics.h with its bootstrap interval, as JSON, as a table
// for the terminal, and as the flat headline numbers the trainer logs to metrics.jsonl and policies name.

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "triad/fairness/metrics.h"
#include "triad/fairness/subgroups.h"

namespace triad::fairness {

// A metric's value and its percentile bootstrap interval; NaN (null in JSON) where undefined.
struct Estimate {
  double value = std::numeric_limits<double>::quiet_NaN();
  double lo = std::numeric_limits<double>::quiet_NaN(), hi = std::numeric_limits<double>::quiet_NaN();
  int resamples = 0;  // bootstrap resamples in which it was defined (a small group can lose a class)
  bool defined() const { return value == value; }
};

struct GroupReport {
  std::string attribute, name;
  GroupCounts counts;
  Estimate subgroup_auc, bpsn_auc, bnsp_auc, positive_rate, tpr, fpr, ece;
  std::string note;  // why some of its metrics are undefined ("one class only: ..."); empty when none is
};

struct AttributeReport {
  std::string attribute;
  std::vector<size_t> groups;  // indices into FairnessReport::groups
  Estimate subgroup_auc_gap, dpd, eod, fpr_gap, equalized_odds, bpsn_auc_gap, bnsp_auc_gap;
  int auc_groups = 0;  // groups with a defined subgroup AUC (the ones its gap spans)
};

struct FairnessReport {
  std::string source;  // the predictions file, when there is one
  MetricOptions options;
  int64_t examples = 0, labelled = 0, positives = 0, negatives = 0;
  Estimate overall_auc, overall_ece;
  Estimate power_mean_subgroup_auc, power_mean_bpsn_auc, power_mean_bnsp_auc, final_bias, ece_max;
  std::vector<GroupReport> groups;  // in the order of the subgroups given
  std::vector<AttributeReport> attributes;
  std::vector<std::string> notes;  // what a reader must know (unlabelled examples, undefined metrics)
};

// Every metric, with intervals from options.bootstrap resamples (none when 0).
FairnessReport fairness_report(std::span<const double> scores, std::span<const int8_t> labels,
                               const std::vector<Subgroup>& subgroups, const MetricOptions& options);

// {"format": "triad-fairness-report", ...}: docs/fairness.md lists the fields. Undefined values are null.
nlohmann::json to_json(const FairnessReport& report);
// The table: overall, then per attribute its groups (n, positives, subgroup/BPSN/BNSP AUC with intervals,
// ECE) and its gaps, then the notes.
std::string format_table(const FairnessReport& report);

// The headline numbers under stable names, defined ones only: fair_overall_auc, fair_final_bias,
// fair_ece_max, and per attribute fair_subgroup_auc_gap_<a>, fair_dpd_<a>, fair_eod_<a>, fair_eq_odds_<a>,
// fair_bpsn_gap_<a>, fair_bnsp_gap_<a>,
// where <a> is the attribute with every character other than [A-Za-z0-9_] made '_'. An undefined metric
// is left out (a policy reading it sees no value, not a number that means nothing).
std::vector<std::pair<std::string, double>> flat_metrics(const FairnessReport& report);
// Every name flat_metrics can give for these attributes, with a one-line description (for a policy check).
std::vector<std::pair<std::string, std::string>> flat_metric_names(
    const std::vector<std::string>& attributes);
// "sexual-orientation" -> "sexual_orientation": the attribute as it appears in a metric name.
std::string metric_name_part(const std::string& attribute);

}  // namespace triad::fairness
