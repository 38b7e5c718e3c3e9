#include "triad/fairness/metrics.h"
#include "triad/fairness/statistics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "triad/core/error.h"
#include "triad/core/parallel.h"
#include "triad/core/rng.h"

namespace triad::fairness {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Uniform in [0, n) (Lemire's multiply-shift; its bias, below n / 2^64, is far below anything measured).
uint32_t draw(Rng& rng, uint32_t n) {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(rng.next()) * n) >> 64);
}

double ratio(double num, double den) {
  return den > 0 ? num / den : kNaN;
}

// (mean of m^p)^(1/p) over the defined (non-NaN) values; NaN when there are none.
double power_mean(const std::vector<double>& values, double p) {
  double sum = 0;
  int count = 0;
  for (double v : values) {
    if (std::isnan(v)) continue;
    sum += std::pow(v, p);  // v = 0 gives +inf for p < 0, and the mean 0
    ++count;
  }
  return count ? std::pow(sum / count, 1.0 / p) : kNaN;
}

// max - min over the defined values of slot `m` of `groups`; NaN with fewer than two.
template <class SlotOf>
double gap(const double* out, const std::vector<size_t>& groups, SlotOf slot_of) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  int count = 0;
  for (size_t g : groups) {
    const double v = out[slot_of(g)];
    if (std::isnan(v)) continue;
    lo = std::min(lo, v), hi = std::max(hi, v);
    ++count;
  }
  return count >= 2 ? hi - lo : kNaN;
}

}  // namespace

struct MetricEngine::Scratch {
  std::vector<double> pos, neg, neg_below, pos_above;  // per tie block
  std::vector<double> bin_count, bin_labels, bin_scores;
  std::vector<double> column;  // one metric over the subgroups (power means)
};

void check_metric_options(const MetricOptions& o) {
  if (!(o.threshold >= 0 && o.threshold <= 1))
    fail_usage("--threshold must be in [0, 1], got {}", o.threshold);
  if (o.ece_bins < 1 || o.ece_bins > 10000)
    fail_usage("--ece-bins must be in [1, 10000], got {}", o.ece_bins);
  if (o.bootstrap < 0 || o.bootstrap > 100000)
    fail_usage("--bootstrap must be in [0, 100000], got {}", o.bootstrap);
  if (!(o.confidence > 0 && o.confidence < 1))
    fail_usage("--confidence must be in (0, 1), got {}", o.confidence);
  if (!(o.power < 0)) fail_usage("the power of the generalized means must be negative, got {}", o.power);
}

MetricEngine::MetricEngine(std::span<const double> scores, std::span<const int8_t> labels,
                           const std::vector<Subgroup>& subgroups, const MetricOptions& options)
    : options_(options), n_(scores.size()), groups_(subgroups.size()) {
  check_metric_options(options);
  if (n_ > std::numeric_limits<uint32_t>::max()) fail("{} examples: at most 2^32 - 1 are supported", n_);
  if (!labels.empty() && labels.size() != n_) fail("{} labels for {} scores", labels.size(), n_);
  scores_.assign(scores.begin(), scores.end());
  labels_.assign(n_, kNoLabel);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != 0 && labels[i] != 1 && labels[i] != kNoLabel)
      fail("example {}: label {} is not 0, 1 or unknown", i, labels[i]);
    labels_[i] = labels[i];
    labelled_ += labels[i] != kNoLabel;
    positives_ += labels[i] == 1;
  }
  for (size_t i = 0; i < n_; ++i) {
    if (!(scores_[i] >= 0 && scores_[i] <= 1))
      fail("example {}: score {} is not a probability in [0, 1]", i, scores_[i]);
  }

  // One sort: the tie block of each example in ascending score.
  std::vector<uint32_t> order(n_);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return scores_[a] < scores_[b]; });
  block_.assign(n_, 0);
  for (size_t k = 0; k < n_; ++k) {
    if (k > 0 && scores_[order[k]] != scores_[order[k - 1]]) ++blocks_;
    block_[order[k]] = blocks_;
  }
  if (n_ > 0) ++blocks_;

  bin_.resize(n_);
  predicted_.resize(n_);
  const int bins = options_.ece_bins;
  for (size_t i = 0; i < n_; ++i) {
    bin_[i] = static_cast<uint16_t>(std::min(static_cast<int>(std::floor(scores_[i] * bins)), bins - 1));
    predicted_[i] = scores_[i] >= options_.threshold;
  }

  members_.resize(groups_);
  for (size_t g = 0; g < groups_; ++g) {
    const Subgroup& s = subgroups[g];
    if (s.member.size() != n_)
      fail("subgroup '{}' of '{}' has {} member flags for {} examples", s.name, s.attribute, s.member.size(),
           n_);
    for (uint32_t i : order) {
      if (s.member[i]) members_[g].push_back(i);
    }
    auto at = std::find(attributes_.begin(), attributes_.end(), s.attribute);
    if (at == attributes_.end()) {
      attributes_.push_back(s.attribute);
      attribute_groups_.emplace_back();
      at = attributes_.end() - 1;
    }
    attribute_groups_[at - attributes_.begin()].push_back(g);
  }
}

GroupCounts MetricEngine::counts(size_t group) const {
  GroupCounts c;
  for (uint32_t i : members_[group]) {
    ++c.members;
    c.positives += labels_[i] == 1;
    c.negatives += labels_[i] == 0;
    c.unlabelled += labels_[i] == kNoLabel;
  }
  return c;
}

std::vector<double> MetricEngine::evaluate(std::span<const uint32_t> weights) const {
  if (weights.size() != n_) fail("{} weights for {} examples", weights.size(), n_);
  Scratch scratch;
  std::vector<double> out(slots());
  evaluate_into(weights, scratch, out.data());
  return out;
}

std::vector<double> MetricEngine::evaluate() const {
  return evaluate(std::vector<uint32_t>(n_, 1));
}

std::vector<uint32_t> MetricEngine::resample_weights(int r, uint64_t seed) const {
  std::vector<uint32_t> w(n_, 0);
  Rng rng(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(r))));
  const uint32_t n = static_cast<uint32_t>(n_);
  for (uint32_t k = 0; k < n; ++k) ++w[draw(rng, n)];
  return w;
}

std::vector<double> MetricEngine::bootstrap(int resamples, uint64_t seed) const {
  const size_t width = slots();
  std::vector<double> out(static_cast<size_t>(std::max(resamples, 0)) * width);
  if (resamples <= 0 || n_ == 0) {
    std::fill(out.begin(), out.end(), kNaN);
    return out;
  }
  parallel_chunks(static_cast<size_t>(resamples), [&](size_t begin, size_t end) {
    Scratch scratch;
    for (size_t r = begin; r < end; ++r) {
      std::vector<uint32_t> w = resample_weights(static_cast<int>(r), seed);
      evaluate_into(w, scratch, out.data() + r * width);
    }
  });
  return out;
}

// S(A, B) below is the pair sum over positives a of A and negatives b of B of w_a w_b [s_a > s_b] (1/2 for
// a tie); AUC(A, B) = S(A, B) / (W(A) W(B)). With P, N all positives and negatives and G a subgroup:
//   subgroup AUC: S(P∩G, N∩G);  BPSN: S(P\G, N∩G) = S(P, N∩G) - S(P∩G, N∩G);
//   BNSP: S(P∩G, N\G) = S(P∩G, N) - S(P∩G, N∩G).
// S(P, ·) and S(·, N) read the weight of all positives above and all negatives below each tie block; the
// within-group sum walks the group's members in ascending score. Weights are integers, so these sums
// (multiples of 1/2, far below 2^53) are exact and the subtractions lose nothing.
void MetricEngine::evaluate_into(std::span<const uint32_t> w, Scratch& s, double* out) const {
  std::fill(out, out + slots(), kNaN);
  const size_t K = blocks_;
  s.pos.assign(K, 0), s.neg.assign(K, 0), s.neg_below.assign(K, 0), s.pos_above.assign(K, 0);
  const int bins = options_.ece_bins;
  s.bin_count.assign(bins, 0), s.bin_labels.assign(bins, 0), s.bin_scores.assign(bins, 0);

  double P = 0, N = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (w[i] == 0 || labels_[i] == kNoLabel) continue;
    const double wi = w[i];
    (labels_[i] ? s.pos : s.neg)[block_[i]] += wi;
    (labels_[i] ? P : N) += wi;
    s.bin_count[bin_[i]] += wi;
    s.bin_labels[bin_[i]] += wi * labels_[i];
    s.bin_scores[bin_[i]] += wi * scores_[i];
  }
  double below = 0, above = 0, S = 0;
  for (size_t b = 0; b < K; ++b) {
    s.neg_below[b] = below;
    S += s.pos[b] * (below + 0.5 * s.neg[b]);
    below += s.neg[b];
  }
  for (size_t b = K; b-- > 0;) {
    s.pos_above[b] = above;
    above += s.pos[b];
  }
  out[kOverallAuc] = ratio(S, P * N);
  auto ece = [&](double count) {
    double sum = 0;
    for (int b = 0; b < bins; ++b) sum += std::abs(s.bin_labels[b] - s.bin_scores[b]);
    return ratio(sum, count);
  };
  out[kOverallEce] = ece(P + N);

  for (size_t g = 0; g < groups_; ++g) {
    double Pg = 0, Ng = 0, all = 0, predicted = 0, tp = 0, fp = 0;
    double S_gg = 0, S_gN = 0, S_Pg = 0;  // S(P∩G, N∩G), S(P∩G, N), S(P, N∩G)
    double run_pos = 0, run_neg = 0, neg_below_g = 0;
    uint32_t run_block = 0;
    std::fill(s.bin_count.begin(), s.bin_count.end(), 0.0);
    std::fill(s.bin_labels.begin(), s.bin_labels.end(), 0.0);
    std::fill(s.bin_scores.begin(), s.bin_scores.end(), 0.0);
    for (uint32_t i : members_[g]) {
      if (w[i] == 0) continue;
      const double wi = w[i];
      all += wi;
      predicted += wi * predicted_[i];
      if (labels_[i] == kNoLabel) continue;
      const uint32_t b = block_[i];
      if (b != run_block) {  // members come in ascending score: close the previous tie block
        S_gg += run_pos * (neg_below_g + 0.5 * run_neg);
        neg_below_g += run_neg;
        run_pos = run_neg = 0;
        run_block = b;
      }
      if (labels_[i] == 1) {
        Pg += wi, run_pos += wi, tp += wi * predicted_[i];
        S_gN += wi * (s.neg_below[b] + 0.5 * s.neg[b]);
      } else {
        Ng += wi, run_neg += wi, fp += wi * predicted_[i];
        S_Pg += wi * (s.pos_above[b] + 0.5 * s.pos[b]);
      }
      s.bin_count[bin_[i]] += wi;
      s.bin_labels[bin_[i]] += wi * labels_[i];
      s.bin_scores[bin_[i]] += wi * scores_[i];
    }
    S_gg += run_pos * (neg_below_g + 0.5 * run_neg);
    double* o = out + group_slot(g, GroupMetric{});
    o[kSubgroupAuc] = ratio(S_gg, Pg * Ng);
    o[kBpsnAuc] = ratio(S_Pg - S_gg, (P - Pg) * Ng);
    o[kBnspAuc] = ratio(S_gN - S_gg, Pg * (N - Ng));
    o[kPositiveRate] = ratio(predicted, all);
    o[kTpr] = ratio(tp, Pg);
    o[kFpr] = ratio(fp, Ng);
    o[kEce] = ece(Pg + Ng);
  }

  for (size_t a = 0; a < attributes_.size(); ++a) {
    const std::vector<size_t>& gs = attribute_groups_[a];
    double* o = out + attribute_slot(a, AttributeMetric{});
    auto slot = [&](GroupMetric m) { return [this, m](size_t g) { return group_slot(g, m); }; };
    o[kSubgroupAucGap] = gap(out, gs, slot(kSubgroupAuc));
    o[kDpd] = gap(out, gs, slot(kPositiveRate));
    o[kEod] = gap(out, gs, slot(kTpr));
    o[kFprGap] = gap(out, gs, slot(kFpr));
    o[kEqualizedOdds] = std::isnan(o[kEod]) || std::isnan(o[kFprGap]) ? kNaN : std::max(o[kEod], o[kFprGap]);
    o[kBpsnAucGap] = gap(out, gs, slot(kBpsnAuc));
    o[kBnspAucGap] = gap(out, gs, slot(kBnspAuc));
  }

  auto column = [&](GroupMetric m) -> const std::vector<double>& {
    s.column.resize(groups_);
    for (size_t g = 0; g < groups_; ++g) s.column[g] = out[group_slot(g, m)];
    return s.column;
  };
  const double p = options_.power;
  out[kPowerMeanSubgroupAuc] = power_mean(column(kSubgroupAuc), p);
  out[kPowerMeanBpsnAuc] = power_mean(column(kBpsnAuc), p);
  out[kPowerMeanBnspAuc] = power_mean(column(kBnspAuc), p);
  // NaN if any part is: 0.25 of each of four numbers, not of three.
  out[kFinalBias] = 0.25 * (out[kOverallAuc] + out[kPowerMeanSubgroupAuc] + out[kPowerMeanBpsnAuc] +
                            out[kPowerMeanBnspAuc]);
  double ece_max = kNaN;
  for (double v : column(kEce)) {
    if (!std::isnan(v) && !(v <= ece_max)) ece_max = v;
  }
  out[kEceMax] = ece_max;
}

double roc_auc(std::span<const double> scores, std::span<const int8_t> labels) {
  if (labels.size() != scores.size()) fail("{} labels for {} scores", labels.size(), scores.size());
  std::vector<uint32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return scores[a] < scores[b]; });
  double S = 0, P = 0, N = 0, below = 0;
  for (size_t k = 0; k < order.size();) {
    size_t end = k;
    double pos = 0, neg = 0;
    for (; end < order.size() && scores[order[end]] == scores[order[k]]; ++end) {
      pos += labels[order[end]] == 1;
      neg += labels[order[end]] == 0;
    }
    S += pos * (below + 0.5 * neg);
    below += neg, P += pos, N += neg;
    k = end;
  }
  return ratio(S, P * N);
}

}  // namespace triad::fairness
