#include "triad/fairness/debias.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "triad/core/error.h"

namespace triad::fairness {

AdversaryGoal parse_adversary_goal(const std::string& name) {
  if (name == "none") return AdversaryGoal::kNone;
  if (name == "parity") return AdversaryGoal::kParity;
  if (name == "odds") return AdversaryGoal::kOdds;
  fail_usage("--adversary must be none, parity or odds, not '{}'", name);
}

AdversaryInput parse_adversary_input(const std::string& name) {
  if (name == "output") return AdversaryInput::kOutput;
  if (name == "pooled") return AdversaryInput::kPooled;
  if (name == "both") return AdversaryInput::kBoth;
  fail_usage("--adversary-input must be output, pooled or both, not '{}'", name);
}

DebiasUpdate parse_debias_update(const std::string& name) {
  if (name == "reversal") return DebiasUpdate::kReversal;
  if (name == "projection") return DebiasUpdate::kProjection;
  fail_usage("--debias-update must be reversal or projection, not '{}'", name);
}

std::vector<std::string> protected_attributes(const std::vector<Subgroup>& subgroups,
                                              const std::vector<std::string>& wanted) {
  std::vector<std::string> present;
  for (const Subgroup& g : subgroups) {
    if (std::find(present.begin(), present.end(), g.attribute) == present.end())
      present.push_back(g.attribute);
  }
  if (wanted.empty()) return present;
  for (const std::string& a : wanted) {
    if (std::find(present.begin(), present.end(), a) == present.end()) {
      fail_usage("--protect {}: the training data has no group of that attribute; it has: {}", a,
                 present.empty() ? std::string("none (give --identity-terms or --identity-columns)")
                                 : fmt::format("{}", fmt::join(present, ", ")));
    }
  }
  return wanted;
}

std::vector<double> reweighing_weights(const std::vector<int>& labels, const std::vector<Subgroup>& subgroups,
                                       const std::vector<std::string>& attributes) {
  const size_t N = labels.size();
  std::vector<std::string> identity(N);
  for (const Subgroup& g : subgroups) {
    if (std::find(attributes.begin(), attributes.end(), g.attribute) == attributes.end()) continue;
    for (size_t i = 0; i < N; ++i) {
      if (g.member[i]) identity[i] += (identity[i].empty() ? "" : "+") + g.name;
    }
  }
  std::map<std::string, double> by_identity;
  std::map<std::pair<std::string, int>, double> by_both;
  double by_label[2] = {0, 0};
  for (size_t i = 0; i < N; ++i) {
    by_identity[identity[i]] += 1;
    by_both[{identity[i], labels[i]}] += 1;
    by_label[labels[i] ? 1 : 0] += 1;
  }
  std::vector<double> w(N);
  for (size_t i = 0; i < N; ++i) {
    w[i] = by_identity[identity[i]] * by_label[labels[i] ? 1 : 0] /
           (static_cast<double>(N) * by_both[{identity[i], labels[i]}]);
  }
  return w;
}

AttributeTargets attribute_targets(const std::vector<Subgroup>& subgroups, const std::string& attribute,
                                   size_t examples) {
  AttributeTargets t;
  t.attribute = attribute;
  std::vector<const Subgroup*> groups;
  for (const Subgroup& g : subgroups) {
    if (g.attribute == attribute) {
      groups.push_back(&g);
      t.groups.push_back(g.name);
    }
  }
  const int none = static_cast<int>(groups.size());
  t.target.assign(examples, none);
  for (size_t i = 0; i < examples; ++i) {
    for (int k = 0; k < none; ++k) {
      if (groups[k]->member[i]) {
        t.target[i] = k;
        break;
      }
    }
  }
  return t;
}

int adversary_inputs(AdversaryGoal goal, AdversaryInput input, int C) {
  const bool odds = goal == AdversaryGoal::kOdds;
  if (input == AdversaryInput::kPooled) return C + (odds ? 1 : 0);
  return (input == AdversaryInput::kBoth ? C : 0) + (odds ? 3 : 1);
}

// A row is [pool (C, kPooled and kBoth)] then [y (kPooled, odds)] or [s, s·y, s·(1−y) (kOutput and kBoth;
// s alone for parity)].
std::vector<float> adversary_features(AdversaryGoal goal, AdversaryInput input, const std::vector<float>& s,
                                      const std::vector<int>& y, const float* pooled, int C) {
  const size_t N = s.size();
  const int width = adversary_inputs(goal, input, C);
  const bool odds = goal == AdversaryGoal::kOdds, reads_pool = input != AdversaryInput::kOutput;
  std::vector<float> x(N * width);
  for (size_t i = 0; i < N; ++i) {
    float* row = x.data() + i * width;
    const float label = static_cast<float>(y[i]);
    if (reads_pool) row = std::copy(pooled + i * C, pooled + (i + 1) * C, row);
    if (input == AdversaryInput::kPooled) {
      if (odds) row[0] = label;
      continue;
    }
    row[0] = s[i];
    if (odds) {
      row[1] = s[i] * label;
      row[2] = s[i] * (1 - label);
    }
  }
  return x;
}

void adversary_feature_backward(AdversaryGoal goal, AdversaryInput input, const std::vector<float>& dx,
                                const std::vector<float>& s, const std::vector<int>& y, int C,
                                std::vector<float>* dlogit, std::vector<float>* dpooled) {
  const size_t N = s.size();
  const int width = adversary_inputs(goal, input, C);
  const bool reads_pool = input != AdversaryInput::kOutput;
  for (size_t i = 0; i < N; ++i) {
    const float* row = dx.data() + i * width;
    if (reads_pool) {
      for (int c = 0; c < C; ++c) (*dpooled)[i * C + c] += row[c];
      row += C;
    }
    if (input == AdversaryInput::kPooled) continue;  // the label column has no gradient
    float ds = row[0];
    if (goal == AdversaryGoal::kOdds) ds += y[i] ? row[1] : row[2];
    (*dlogit)[i] += ds * s[i] * (1 - s[i]);
  }
}

double project_out(std::vector<float>* task, const std::vector<float>& adv, double lambda) {
  double dot = 0, adv2 = 0, task2 = 0;
  for (size_t i = 0; i < adv.size(); ++i) {
    dot += static_cast<double>((*task)[i]) * adv[i];
    adv2 += static_cast<double>(adv[i]) * adv[i];
    task2 += static_cast<double>((*task)[i]) * (*task)[i];
  }
  const double along = adv2 > 0 ? dot / adv2 : 0;
  for (size_t i = 0; i < adv.size(); ++i) {
    (*task)[i] = static_cast<float>((*task)[i] - (along + lambda) * adv[i]);
  }
  return adv2 > 0 && task2 > 0 ? dot / std::sqrt(adv2 * task2) : 0;
}

double lambda_at(int step, double lambda, int warmup) {
  if (warmup <= 0 || step >= warmup) return lambda;
  return lambda * static_cast<double>(step) / warmup;
}

}  // namespace triad::fairness
