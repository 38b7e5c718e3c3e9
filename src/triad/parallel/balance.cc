#include "triad/parallel/balance.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "triad/core/error.h"
#include "triad/core/statistics.h"
#include "triad/parallel/pipeline_schedule.h"

namespace triad::parallel {

BalanceMode parse_balance(const std::string& name) {
  if (name == "none") return BalanceMode::kNone;
  if (name == "static") return BalanceMode::kStatic;
  if (name == "online") return BalanceMode::kOnline;
  fail_usage("--balance must be none, static or online, got '{}'", name);
}

std::vector<int> split_rows(int batch, const std::vector<double>& weights, int min_rows) {
  const int n = static_cast<int>(weights.size());
  if (n == 0 || min_rows < 1 || batch < n * min_rows) {
    fail("split_rows: {} rows cannot give {} ranks {} or more each", batch, n, min_rows);
  }
  for (double w : weights) {
    if (!(w > 0) || !std::isfinite(w)) fail("split_rows: weight {} is not a positive number", w);
  }
  // Pin the ranks whose quota is below min_rows, until none is: pinning one takes more rows than its quota
  // from the others, so a pinned rank stays below in every later round.
  std::vector<char> pinned(n, 0);
  std::vector<double> quota(n, 0.0);
  for (bool more = true; more;) {
    more = false;
    int rest = batch;
    double total = 0;
    for (int r = 0; r < n; ++r) {
      if (pinned[r]) {
        rest -= min_rows;
      } else {
        total += weights[r];
      }
    }
    for (int r = 0; r < n; ++r) {
      if (pinned[r]) continue;
      quota[r] = rest * (weights[r] / total);
      if (quota[r] < min_rows - 1e-9) {  // not on a rounding error
        pinned[r] = 1;
        more = true;
      }
    }
  }
  std::vector<int> rows(n);
  int left = batch;
  for (int r = 0; r < n; ++r) {
    rows[r] = pinned[r] ? min_rows : std::max(min_rows, static_cast<int>(std::floor(quota[r])));
    left -= rows[r];
  }
  // Largest remainders first, the lower rank on a tie; the loop also takes rows back (smallest remainder
  // first) should rounding have left the floors above the batch.
  std::vector<int> order;
  for (int r = 0; r < n; ++r) {
    if (!pinned[r]) order.push_back(r);
  }
  auto remainder = [&](int r) { return quota[r] - std::floor(quota[r]); };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return remainder(a) > remainder(b); });
  if (order.empty() && left != 0) fail("split_rows: every rank pinned with {} rows left", left);
  for (size_t i = 0; left > 0; i = (i + 1) % order.size()) {
    rows[order[i]]++;
    left--;
  }
  for (size_t i = order.size(); left < 0;) {
    i = (i == 0 ? order.size() : i) - 1;
    if (rows[order[i]] > min_rows) {
      rows[order[i]]--;
      left++;
    }
  }
  return rows;
}

double imbalance(const std::vector<double>& shares, const std::vector<double>& target) {
  double worst = 1;
  for (size_t r = 0; r < shares.size(); ++r) worst = std::max(worst, shares[r] / target[r]);
  return worst - 1;
}

double balance_gain(double imbalance, double gamma) {
  return 2 / (1 + std::exp(-gamma * imbalance)) - 1;
}

std::vector<double> smooth_shares(const std::vector<double>& shares, const std::vector<double>& target,
                                  double gamma) {
  const double gain = balance_gain(imbalance(shares, target), gamma);
  std::vector<double> out(shares.size());
  for (size_t r = 0; r < shares.size(); ++r) out[r] = shares[r] + gain * (target[r] - shares[r]);
  return out;
}

RowBalancer::RowBalancer(BalanceMode mode, int batch, int ranks, int min_rows, double gamma)
    : mode_(mode),
      batch_(batch),
      min_rows_(min_rows),
      gamma_(gamma),
      shares_(static_cast<size_t>(ranks), 1.0 / ranks) {
  rows_ = split_rows(batch_, shares_, min_rows_);
}

int RowBalancer::offset(int rank) const {
  return std::accumulate(rows_.begin(), rows_.begin() + rank, 0);
}

// The step time `rows` would take at speeds in proportion to `shares` (in units of 1 / Σ speed).
double RowBalancer::step_time(const std::vector<int>& rows, const std::vector<double>& shares) {
  double worst = 0;
  for (size_t r = 0; r < rows.size(); ++r) worst = std::max(worst, rows[r] / shares[r]);
  return worst;
}

void RowBalancer::observe(const std::vector<double>& seconds) {
  const size_t n = rows_.size();
  if (seconds.size() != n) fail("RowBalancer: {} times for {} ranks", seconds.size(), n);
  speeds_.resize(n);
  for (size_t r = 0; r < n; ++r) speeds_[r] = rows_[r] / std::max(seconds[r], 1e-9);
  const double total = std::accumulate(speeds_.begin(), speeds_.end(), 0.0);
  std::vector<double> target(n);
  for (size_t r = 0; r < n; ++r) target[r] = speeds_[r] / total;

  if (skip_ > 0) {
    --skip_;
    return;
  }
  if (mode_ == BalanceMode::kOnline) {
    shares_ = smooth_shares(shares_, target, gamma_);
  } else if (mode_ == BalanceMode::kStatic && measured_.size() < kStaticSteps) {
    measured_.push_back(speeds_);
    if (measured_.size() < kStaticSteps) return;
    // The median of the equal-share steps: one slow step (a neighbour's burst) does not set the split.
    for (size_t r = 0; r < n; ++r) {
      std::vector<double> mine;
      for (const auto& step : measured_) mine.push_back(step[r]);
      shares_[r] = median(mine);
    }
    const double sum = std::accumulate(shares_.begin(), shares_.end(), 0.0);
    for (double& s : shares_) s /= sum;
  } else {
    return;
  }
  std::vector<int> next = split_rows(batch_, shares_, min_rows_);
  if (step_time(next, shares_) < step_time(rows_, shares_) * (1 - kMinGain)) {
    rows_ = std::move(next);
    skip_ = 1;  // the next step faults in buffers of the new shapes
  }
}

StageBalancer::StageBalancer(std::vector<int> blocks, double head_blocks, StageSharing sharing)
    : blocks_(std::move(blocks)), head_blocks_(head_blocks), sharing_(std::move(sharing)) {}

double StageBalancer::predicted(const std::vector<int>& blocks) const {
  if (!sharing_.shares.empty()) return simulate_split(sharing_, blocks, block_seconds_, head_blocks_);
  double slowest = 0;
  for (size_t s = 0; s < blocks.size(); ++s) {
    const double work = stage_work(blocks, s, head_blocks_);
    slowest = std::max(slowest, work / speeds_[s]);
  }
  return slowest;
}

bool StageBalancer::worth_moving(const std::vector<int>& next, double here) const {
  if (next == blocks_) return false;
  auto known = measured_.find(next);
  if (known != measured_.end() && observed_ - known->second.when <= kRememberSteps)
    return known->second.step_seconds < here * (1 - kMinGain);
  return predicted(next) < predicted(blocks_) * (1 - kMinGain);
}

std::vector<int> StageBalancer::observe(const std::vector<double>& busy_seconds, double step_seconds) {
  const size_t n = blocks_.size();
  if (busy_seconds.size() != n) fail("StageBalancer: {} stage times for {} stages", busy_seconds.size(), n);
  ++observed_;
  if (skip_ > 0) {
    --skip_;
    return {};
  }
  std::vector<double> speed(n);
  for (size_t s = 0; s < n; ++s) {
    const double work = stage_work(blocks_, s, head_blocks_);
    speed[s] = work / std::max(busy_seconds[s], 1e-9);
  }
  speeds_seen_.push_back(std::move(speed));
  step_seconds_seen_.push_back(step_seconds);
  if (speeds_seen_.size() > static_cast<size_t>(kSteps)) {
    speeds_seen_.erase(speeds_seen_.begin());
    step_seconds_seen_.erase(step_seconds_seen_.begin());
  }
  if (speeds_seen_.size() < static_cast<size_t>(kSteps)) return {};
  speeds_.assign(n, 0);
  for (size_t s = 0; s < n; ++s) {
    std::vector<double> mine;
    for (const auto& step : speeds_seen_) mine.push_back(step[s]);
    speeds_[s] = median(mine);
  }
  const double here = median(step_seconds_seen_);
  measured_[blocks_] = {here, observed_};
  std::vector<int> next;
  if (sharing_.shares.empty()) {
    next = stage_counts(
        balanced_split(std::accumulate(blocks_.begin(), blocks_.end(), 0), speeds_, head_blocks_));
  } else {
    std::vector<double> busy;
    for (size_t s = 0; s < n; ++s) busy.push_back(stage_work(blocks_, s, head_blocks_) / speeds_[s]);
    block_seconds_ = block_seconds_at_a_core(sharing_, blocks_, head_blocks_, busy);
    next = fastest_simulated_split(sharing_, blocks_, block_seconds_, head_blocks_);
  }
  if (!worth_moving(next, here)) return {};
  blocks_ = next;
  speeds_seen_.clear();
  step_seconds_seen_.clear();
  skip_ = kWarmupSteps;
  return next;
}

}  // namespace triad::parallel
