#pragma once
// Data-parallel rows in proportion to measured speed (--balance; paper §3.2.1 Eq. 5-6, §3.4): on uneven
// hardware each data-parallel rank trains a share of the global batch that matches its throughput, so the
// fast ranks stop waiting for the slow one at every gradient average.
//
// Every step each rank times its batch gradient (the forward and backward, not the wait for the
// reduction); the trainer sums the seconds over the ranks in the step's loss all-reduce, so every rank
// holds the same numbers and computes the same split. The split is derived state: a resumed run starts
// again from equal shares.
//
//   static   equal shares for a warm-up step and kStaticSteps more, then rows fixed in proportion to each
//            rank's median speed over those
//   online   after every step (but the warm-up and the first at new rows), the shares move toward
//            speed_r / Σ speed by a sigmoid-weighted gain (Eq. 6, read as in smooth_shares() below), and
//            the rows follow them when that is worth a change (kMinGain)
//
// The update stays the 1-process update whatever the split: rank r trains rows [offset_r, offset_r +
// rows_r) of the same global batch, scales its loss gradient by ranks / (B T) so that the average over the
// ranks is the gradient of the mean over all B rows, and the step's loss weighs every row once. That loss
// is how Eq. 5 (L = α L_data + (1 - α) L_model, a mix of the partitions' losses weighted by their shares)
// reads here: Σ_r (rows_r / B) L_r, each rank's mean loss weighted by its share of the batch.

#include <map>
#include <string>
#include <vector>

#include "triad/parallel/shared_cores.h"

namespace triad::parallel {

enum class BalanceMode { kNone, kStatic, kOnline };

// "none", "static" or "online" (--balance); anything else is a usage error.
BalanceMode parse_balance(const std::string& name);

// `batch` rows over weights.size() ranks in proportion to the (positive) weights, each rank at least
// `min_rows`, summing to `batch` exactly. A rank whose proportional share is below min_rows gets min_rows
// and the rest is shared again over the others; then each takes the floor of its quota and the rows left
// go to the largest remainders (ties: the lower rank). A pure function of its arguments, so ranks holding
// the same numbers agree.
std::vector<int> split_rows(int batch, const std::vector<double>& weights, int min_rows);

// How much faster the proportional split `target` would be than `shares`, by the speeds that gave the
// target: the step takes max_r shares_r / speed_r, the balanced one 1 / Σ speed, and their ratio less 1 is
// max_r shares_r / target_r - 1 (0 when they agree).
double imbalance(const std::vector<double>& shares, const std::vector<double>& target);

// Eq. 6, α(t) = σ(γ (η_data - η_model)), read as the weight of the better of two partitions of the work by
// how much more throughput it has. Here the two are the split in force (the shares) and the proportional
// one (the target), and their relative throughput difference is imbalance(shares, target) = D. The shares
// move toward the target by
//
//   gain = 2 σ(γ D) - 1  (= tanh(γ D / 2))
//
// σ's range [1/2, 1) mapped onto [0, 1): a gap the size of timing noise moves the shares little (noise is
// smoothed away, the split does not flicker), a large one (a rank slowed by a neighbour) moves them almost
// all the way in a step. γ is --balance-gamma. The literal σ(γ D) would move half way at D = 0, so each
// step's noise would reach the split at half strength.
double balance_gain(double imbalance, double gamma);
// shares + gain (target - shares); both sum to 1, so the result does.
std::vector<double> smooth_shares(const std::vector<double>& shares, const std::vector<double>& target,
                                  double gamma);

class RowBalancer {
 public:
  // The first step of a process allocates its activations and warms the caches (2x slower than the next
  // on the default model, 3-7x on the tests' tiny one), and so does the first step at new rows: their
  // times are no speeds. A change of rows thus costs about a step, and the split changes only when the
  // new one is faster by kMinGain by the shares: this also keeps it from flickering between two splits
  // that are equally fast (rounding can make them so).
  static constexpr int kWarmupSteps = 1;
  static constexpr double kMinGain = 0.02;
  static constexpr int kStaticSteps = 3;  // --balance static then measures this many steps of equal shares

  // `batch` rows a step over `ranks` data-parallel ranks, each at least `min_rows` (its micro-batches).
  RowBalancer(BalanceMode mode, int batch, int ranks, int min_rows, double gamma);

  // This step's rows per rank, and where rank r's rows start in the global batch.
  const std::vector<int>& rows() const { return rows_; }
  int offset(int rank) const;
  // After a step: each rank's batch-gradient seconds (the same numbers on every rank). Measures the speeds
  // and sets the next step's rows.
  void observe(const std::vector<double>& seconds);
  // Rows per second of each rank in the last observed step.
  const std::vector<double>& speeds() const { return speeds_; }
  const std::vector<double>& shares() const { return shares_; }

 private:
  static double step_time(const std::vector<int>& rows, const std::vector<double>& shares);

  BalanceMode mode_;
  int batch_, min_rows_;
  double gamma_;
  std::vector<int> rows_;
  std::vector<double> shares_, speeds_;
  int skip_ = kWarmupSteps;                    // steps whose times are not to be used
  std::vector<std::vector<double>> measured_;  // static: the speeds of the equal-share steps
};

// Pipeline stages under --balance online: blocks move between stages when the stages' measured times say
// another split would be faster by kMinGain. A stage's speed is its blocks (on the last stage plus the LM
// head's `head_blocks`) over its busy time in a step, the median of kSteps steps since the start or the
// last move (whose first step, faulting in new buffers, is no speed); balanced_split then proposes the
// split that makes the slowest stage fastest. Moving blocks moves their weights and optimizer state, by
// way of a checkpoint (train/stage_balance.h), which costs seconds, and this machine's steps drift by
// 5-10 % over a minute: hence a gain of 10 % and fresh measurements after every move.
//
// Where stages share a core (`sharing`, shared_cores.h), a stage's speed depends on the split: giving one
// of them a block slows its neighbour too. There each stage's work per block at a core's speed is fitted to
// the measured busy times by simulating the step (block_seconds_at_a_core) and the proposal is the split
// whose simulated step is shortest (fastest_simulated_split). The model can still be wrong (the schedule's
// point-to-point waits, a neighbour outside the job), and three stages on two cores once flipped between
// 2,2,2 and 2,3,1 every five steps (1.85 against 1.98 s), so each split's measured step time is kept (for
// kRememberSteps observed steps), and a proposal measured before is taken only if it measured kMinGain
// faster than the split in force — a bandit's memory of its arms, the paper's "monitor agent" reduced to
// what it needs here. Blocks are whole, so Eq. 6's gradual shares have nothing to act on.
class StageBalancer {
 public:
  static constexpr int kWarmupSteps = 1;
  static constexpr int kSteps = 3;
  static constexpr double kMinGain = 0.10;
  static constexpr int kRememberSteps = 100;

  // `blocks`: the blocks per stage in force; `sharing`: which stages take turns on shared CPUs.
  StageBalancer(std::vector<int> blocks, double head_blocks, StageSharing sharing = {});

  // After a step: each stage's busy seconds and the step's seconds (the same numbers on every rank). The
  // blocks per stage to move to, or empty to stay.
  std::vector<int> observe(const std::vector<double>& busy_seconds, double step_seconds);
  // Blocks per second of each stage's busy time by the last estimate (empty before the first).
  const std::vector<double>& speeds() const { return speeds_; }
  // Under sharing: seconds per block and micro-batch of each stage at a core's speed (empty otherwise).
  const std::vector<double>& block_seconds() const { return block_seconds_; }

 private:
  struct Measured {
    double step_seconds;  // the median over kSteps steps
    int when;             // observed steps so far, then
  };
  // The step at `blocks` by the last estimate: the slowest stage at speeds_, or under sharing the
  // simulated step at block_seconds_.
  double predicted(const std::vector<int>& blocks) const;
  bool worth_moving(const std::vector<int>& next, double here) const;

  std::vector<int> blocks_;
  double head_blocks_;
  StageSharing sharing_;
  int skip_ = kWarmupSteps, observed_ = 0;
  std::vector<std::vector<double>> speeds_seen_;  // per step since the last move: each stage's speed
  std::vector<double> step_seconds_seen_;         // and the step's seconds
  std::vector<double> speeds_, block_seconds_;
  std::map<std::vector<int>, Measured> measured_;  // blocks per stage -> its step time
};

}  // namespace triad::parallel
