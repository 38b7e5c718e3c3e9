#include "triad/fairness/evaluation.h"

#include <algorithm>
#include <cmath>

#include "triad/fairness/report.h"

namespace triad::fairness {

std::vector<int8_t> label_bytes(const std::vector<int>& labels) {
  std::vector<int8_t> out(labels.size());
  for (size_t i = 0; i < labels.size(); ++i)
    out[i] = labels[i] < 0 ? kNoLabel : static_cast<int8_t>(labels[i]);
  return out;
}

std::vector<std::pair<std::string, double>> evaluation_metrics(const std::vector<float>& probabilities,
                                                               const std::vector<int>& labels,
                                                               const std::vector<Subgroup>& subgroups) {
  double loss = 0, correct = 0;
  const size_t n = probabilities.size();
  for (size_t i = 0; i < n; ++i) {
    const double p = std::clamp(static_cast<double>(probabilities[i]), 1e-7, 1 - 1e-7);
    loss -= labels[i] ? std::log(p) : std::log(1 - p);
    correct += (p >= 0.5) == (labels[i] == 1);
  }
  std::vector<std::pair<std::string, double>> out = {{"val_loss", n ? loss / n : 0.0},
                                                     {"val_accuracy", n ? correct / n : 0.0}};
  // The headline fairness numbers without intervals: an evaluation during training wants the values fast;
  // `triad fairness` on the predictions gives the intervals.
  const std::vector<double> scores(probabilities.begin(), probabilities.end());
  const std::vector<int8_t> y = label_bytes(labels);
  const FairnessReport report = fairness_report(scores, y, subgroups, MetricOptions{.bootstrap = 0});
  for (auto& metric : flat_metrics(report)) out.push_back(std::move(metric));
  return out;
}

}  // namespace triad::fairness
