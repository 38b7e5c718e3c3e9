#include "triad/explain/eraser.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "triad/core/error.h"

namespace triad::explain {

namespace {

void check_scores(std::span<const double> scores) {
  for (size_t i = 0; i < scores.size(); ++i)
    if (!std::isfinite(scores[i])) fail_usage("explanation score {} of token {} is not finite", scores[i], i);
}

void check_same_length(size_t a, size_t b, const char* what) {
  if (a != b) fail_usage("{}: {} tokens against {}", what, a, b);
}

double ratio(int64_t num, int64_t den) {
  return den == 0 ? 0.0 : double(num) / double(den);
}

bool kept_always(std::span<const uint8_t> always_keep, size_t i) {
  return !always_keep.empty() && always_keep[i];
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

}  // namespace

std::vector<uint8_t> top_k_mask(std::span<const double> scores, int k, std::span<const uint8_t> always_keep) {
  check_scores(scores);
  if (!always_keep.empty()) check_same_length(scores.size(), always_keep.size(), "top-k: always-keep mask");
  if (k < 0) fail_usage("top-k: k = {} is negative", k);
  std::vector<int> order;
  for (size_t i = 0; i < scores.size(); ++i)
    if (!kept_always(always_keep, i)) order.push_back(int(i));
  // stable_sort on descending score: equal scores keep their positions' order, the earlier token first.
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  std::vector<uint8_t> mask(scores.size(), 0);
  for (size_t r = 0; r < order.size() && r < size_t(k); ++r) mask[order[r]] = 1;
  return mask;
}

int tokens_for_fraction(int eligible, double fraction) {
  if (eligible < 0) fail_usage("token fraction: {} eligible tokens", eligible);
  if (!(fraction >= 0 && fraction <= 1)) fail_usage("token fraction {} is not in [0, 1]", fraction);
  // Round to 1e-9 before the ceiling: 0.1 * 30 is 3.0000000000000004 in binary floating point.
  const double product = std::round(fraction * eligible * 1e9) / 1e9;
  return int(std::ceil(product));
}

std::vector<std::pair<int, int>> spans(std::span<const uint8_t> mask) {
  std::vector<std::pair<int, int>> out;
  const int n = int(mask.size());
  for (int i = 0; i < n;) {
    if (!mask[i]) {
      ++i;
      continue;
    }
    int j = i;
    while (j < n && mask[j]) ++j;
    out.emplace_back(i, j);
    i = j;
  }
  return out;
}

MatchCounts& MatchCounts::operator+=(const MatchCounts& o) {
  matched += o.matched;
  predicted += o.predicted;
  gold += o.gold;
  return *this;
}

double MatchCounts::precision() const {
  return ratio(matched, predicted);
}
double MatchCounts::recall() const {
  return ratio(matched, gold);
}
double MatchCounts::f1() const {
  const double p = precision(), r = recall();
  return p == 0 || r == 0 ? 0.0 : 2 * p * r / (p + r);
}

MatchCounts token_matches(std::span<const uint8_t> rationale, std::span<const uint8_t> predicted) {
  check_same_length(rationale.size(), predicted.size(), "token matches: predicted rationale");
  MatchCounts c;
  for (size_t i = 0; i < rationale.size(); ++i) {
    c.gold += rationale[i] != 0;
    c.predicted += predicted[i] != 0;
    c.matched += rationale[i] != 0 && predicted[i] != 0;
  }
  return c;
}

MatchCounts iou_matches(std::span<const uint8_t> rationale, std::span<const uint8_t> predicted,
                        double threshold) {
  check_same_length(rationale.size(), predicted.size(), "IOU matches: predicted rationale");
  if (!(threshold > 0 && threshold <= 1)) fail_usage("IOU threshold {} is not in (0, 1]", threshold);
  const auto gold_spans = spans(rationale), predicted_spans = spans(predicted);
  MatchCounts c;
  c.gold = int64_t(gold_spans.size());
  c.predicted = int64_t(predicted_spans.size());
  for (const auto& [pb, pe] : predicted_spans) {
    double best = 0;
    for (const auto& [gb, ge] : gold_spans) {
      const int inter = std::max(0, std::min(pe, ge) - std::max(pb, gb));
      const int uni = (pe - pb) + (ge - gb) - inter;
      best = std::max(best, double(inter) / double(uni));
    }
    c.matched += best >= threshold;
  }
  return c;
}

RationaleMatch match_top_k(std::span<const uint8_t> rationale, std::span<const double> scores, int k,
                           double iou_threshold) {
  check_same_length(rationale.size(), scores.size(), "rationale match: scores");
  if (k < 0) k = int(std::count_if(rationale.begin(), rationale.end(), [](uint8_t r) { return r != 0; }));
  const auto predicted = top_k_mask(scores, k);
  return {token_matches(rationale, predicted), iou_matches(rationale, predicted, iou_threshold)};
}

double average_precision(std::span<const uint8_t> rationale, std::span<const double> scores) {
  check_same_length(rationale.size(), scores.size(), "average precision: scores");
  check_scores(scores);
  const int64_t positives =
      std::count_if(rationale.begin(), rationale.end(), [](uint8_t r) { return r != 0; });
  if (positives == 0) return std::numeric_limits<double>::quiet_NaN();
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  // One point of the PR curve per distinct score, after every token of that score is in.
  double ap = 0, previous_recall = 0;
  int64_t tp = 0;
  for (size_t r = 0; r < order.size(); ++r) {
    tp += rationale[order[r]] != 0;
    if (r + 1 < order.size() && scores[order[r + 1]] == scores[order[r]]) continue;
    const double recall = double(tp) / double(positives), precision = double(tp) / double(r + 1);
    ap += (recall - previous_recall) * precision;
    previous_recall = recall;
  }
  return ap;
}

double Faithfulness::aopc_comprehensiveness() const {
  return mean(comprehensiveness);
}
double Faithfulness::aopc_sufficiency() const {
  return mean(sufficiency);
}

Faithfulness faithfulness_at(std::span<const double> scores, std::span<const int> ks,
                             const KeepMaskModel& model, std::span<const uint8_t> always_keep) {
  if (!model) fail_usage("faithfulness: no model callback");
  const size_t n = scores.size();
  std::vector<std::vector<int>> masks;
  masks.emplace_back(n, 1);
  std::vector<std::vector<uint8_t>> top;
  for (int k : ks) top.push_back(top_k_mask(scores, k, always_keep));  // checks scores, k and always_keep
  for (const auto& t : top) {                                          // comprehensiveness: drop the top-k
    std::vector<int> m(n);
    for (size_t i = 0; i < n; ++i) m[i] = t[i] ? 0 : 1;
    masks.push_back(std::move(m));
  }
  for (const auto& t : top) {  // sufficiency: only the top-k (and the always-keep tokens)
    std::vector<int> m(n);
    for (size_t i = 0; i < n; ++i) m[i] = t[i] || kept_always(always_keep, i) ? 1 : 0;
    masks.push_back(std::move(m));
  }
  const std::vector<double> p = model(masks);
  if (p.size() != masks.size())
    fail("faithfulness: the model returned {} probabilities for {} inputs", p.size(), masks.size());
  for (double v : p)
    if (!std::isfinite(v)) fail("faithfulness: the model returned a probability of {}", v);
  Faithfulness f;
  f.full = p[0];
  f.k.assign(ks.begin(), ks.end());
  for (size_t b = 0; b < ks.size(); ++b) {
    f.comprehensiveness.push_back(p[0] - p[1 + b]);
    f.sufficiency.push_back(p[0] - p[1 + ks.size() + b]);
  }
  return f;
}

Faithfulness faithfulness(std::span<const double> scores, const KeepMaskModel& model,
                          std::span<const double> fractions, std::span<const uint8_t> always_keep) {
  if (!always_keep.empty())
    check_same_length(scores.size(), always_keep.size(), "faithfulness: always-keep mask");
  int eligible = 0;
  for (size_t i = 0; i < scores.size(); ++i) eligible += !kept_always(always_keep, i);
  std::vector<int> ks;
  for (double f : fractions) ks.push_back(tokens_for_fraction(eligible, f));
  return faithfulness_at(scores, ks, model, always_keep);
}

}  // namespace triad::explain
