#pragma once
// Mitigated vs baseline over seeds: each headline metric (flat_metrics) of N baseline and N mitigated
// reports, paired by position (run i of each was trained with the same seed), with the paired t-test of
// fairness/statistics.h.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/fairness/report.h"
#include "triad/fairness/statistics.h"

namespace triad::fairness {

struct MetricComparison {
  std::string name;                         // a flat_metrics name
  std::vector<double> baseline, mitigated;  // the pairs where both runs define it
  bool tested = false;                      // at least two pairs: `test` holds the t-test
  PairedTest test;
};

struct RunComparison {
  std::vector<std::string> baseline_sources, mitigated_sources;
  double confidence = 0.95;
  std::vector<MetricComparison> metrics;  // in the order the baseline's first report names them
  std::vector<std::string> notes;
};

// Needs as many mitigated as baseline reports, at least two of each.
RunComparison compare_runs(const std::vector<FairnessReport>& baseline,
                           const std::vector<FairnessReport>& mitigated, double confidence = 0.95);

nlohmann::json to_json(const RunComparison& comparison);
std::string format_comparison(const RunComparison& comparison);

}  // namespace triad::fairness
