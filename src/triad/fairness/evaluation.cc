#include "triad/fairness/evaluation.h"

#include <algorithm>
#include <cmath>

namespace triad::fairness {

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
  (void)subgroups;
  return out;
}

}  // namespace triad::fairness
