#pragma once
// What a classifier's evaluation reports, as (name, value) pairs for metrics.jsonl, the audit log and
// --policy rules: val_loss (mean binary cross-entropy of the probabilities), val_accuracy (at 0.5) and,
// when the examples have labels of both classes, the fairness metrics' headline numbers
// (fairness/report.h: fair_overall_auc, fair_subgroup_auc_gap_<attribute>, ...).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "triad/fairness/subgroups.h"

namespace triad::fairness {

// Labels as the metrics take them: -1 (unknown) becomes kNoLabel.
std::vector<int8_t> label_bytes(const std::vector<int>& labels);

std::vector<std::pair<std::string, double>> evaluation_metrics(const std::vector<float>& probabilities,
                                                               const std::vector<int>& labels,
                                                               const std::vector<Subgroup>& subgroups);

}  // namespace triad::fairness
