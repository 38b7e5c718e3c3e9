#pragma once
// ERASER metrics of a token-relevance explanation (DeYoung et al. 2020, "ERASER: A Benchmark to Evaluate
// Rationalized NLP Models"), on plain vectors: one score per token from any method, and either a human
// rationale (a 0/1 mask per token) or the model itself (a callback). Nothing here sees a model or a
// tokenizer.
//
// Against a human rationale (plausibility):
// - Token precision / recall / F1: the predicted rationale is the top-k tokens by score (k = the gold
//   rationale's length unless given), compared token by token with the mask. Over a dataset, sum the counts
//   and take P/R/F1 of the sums (ERASER's "instance_micro"); the per-instance mean is the caller's.
// - IOU-F1: a span is a maximal run of consecutive selected tokens. A predicted span is a true positive when
//   its best intersection-over-union with any gold span is >= 0.5; precision = TP / predicted spans, recall
//   = TP / gold spans ("partial match", micro over a dataset by summing the counts). Spans cut from masks are
//   separated by a gap, so two predicted spans can never both reach 0.5 with the same gold span.
// - AUPRC: average precision of the scores against the mask, exactly scikit-learn's average_precision_score:
//   sort by score descending, one threshold per distinct score (tied tokens enter together), AP = sum over
//   thresholds of (R_n - R_{n-1}) * P_n. It is undefined (NaN) without a positive token; ERASER drops
//   single-class documents from this average. (ERASER's field "auprc" is the trapezoid under the PR curve;
//   its "average_precision" is this one.)
//
// Faithfulness, without rationales:
//   comprehensiveness(k) = p(y | x) - p(y | x without its top-k tokens)      (high: the tokens were needed)
//   sufficiency(k)       = p(y | x) - p(y | only its top-k tokens)           (low: the tokens were enough)
//   AOPC = the mean of each over the bins, by default 1, 5, 10, 20 and 50 % of the tokens (ERASER's average
//   over its thresholds only, without Samek et al.'s k = 0 term).
// y is the label the model predicted on the full input; the caller fixes it inside the callback.
// k% of n tokens is ceil(k/100 * n) tokens, as in ERASER's baseline models (math.ceil of the eligible length
// times the fraction), except that the product is rounded to the nearest 1e-9 first so that 10 % of 30
// tokens is 3, not the 4 that ceil(30 * 0.1 = 3.0000000000000004) gives in floating point. Tokens marked
// always-keep (special tokens, a question or hypothesis that is not part of the explained text) are neither
// counted in n nor ever removed, as ERASER's always_keep_mask.
// "Removing" a token is the caller's business: the callback gets a 0/1 keep mask per token and should drop
// the tokens marked 0 (ERASER rebuilds the input from the kept tokens), not replace them with a pad or mask
// token, which the model may read as a signal of its own.
//
// Ties in the scores: top-k takes the earlier token first, so every result is deterministic.

#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

namespace triad::explain {

// The k highest-scoring tokens as a 0/1 mask (ties to the earlier position), skipping tokens whose
// `always_keep` flag is set (empty: none). k larger than the eligible tokens selects all of them.
std::vector<uint8_t> top_k_mask(std::span<const double> scores, int k,
                                std::span<const uint8_t> always_keep = {});

// ceil(fraction * eligible), the product first rounded to 1e-9 (see above).
int tokens_for_fraction(int eligible, double fraction);

// Maximal runs of selected tokens as [begin, end) pairs, in order.
std::vector<std::pair<int, int>> spans(std::span<const uint8_t> mask);

// Matches of one instance (or summed over a dataset); P/R/F1 are 0 where their denominator is 0, as ERASER.
struct MatchCounts {
  int64_t matched = 0;    // true positives: tokens selected by both, or predicted spans with IOU >= threshold
  int64_t predicted = 0;  // predicted tokens or spans
  int64_t gold = 0;       // rationale tokens or spans
  MatchCounts& operator+=(const MatchCounts& o);
  double precision() const;
  double recall() const;
  double f1() const;
};

// Token-level matches of a predicted mask against the rationale (same length).
MatchCounts token_matches(std::span<const uint8_t> rationale, std::span<const uint8_t> predicted);

// Span-level matches at an IOU threshold (ERASER reports 0.5).
MatchCounts iou_matches(std::span<const uint8_t> rationale, std::span<const uint8_t> predicted,
                        double threshold = 0.5);

// Token and IOU matches of the top-k tokens of `scores`; k < 0 means the rationale's length.
struct RationaleMatch {
  MatchCounts token, iou;
};
RationaleMatch match_top_k(std::span<const uint8_t> rationale, std::span<const double> scores, int k = -1,
                           double iou_threshold = 0.5);

// scikit-learn's average_precision_score(rationale, scores); NaN when the rationale is empty.
double average_precision(std::span<const uint8_t> rationale, std::span<const double> scores);

// p(y) for each keep mask (1 = the token stays), in order: the model behind a function.
using KeepMaskModel =
    std::function<std::vector<double>(const std::vector<std::vector<int>>& kept_token_masks)>;

inline const std::vector<double> kAopcBins = {0.01, 0.05, 0.10, 0.20, 0.50};

struct Faithfulness {
  double full = 0;                        // p(y | x), from the all-ones mask
  std::vector<int> k;                     // tokens removed / kept, per bin
  std::vector<double> comprehensiveness;  // per bin
  std::vector<double> sufficiency;        // per bin
  double aopc_comprehensiveness() const;  // the mean over the bins
  double aopc_sufficiency() const;
};

// Comprehensiveness and sufficiency at each token count in `ks`, in one call of `model` with 1 + 2 |ks|
// masks: the full input, then per k the input without its top-k tokens, then per k only its top-k tokens
// (always-keep tokens stay in every mask).
Faithfulness faithfulness_at(std::span<const double> scores, std::span<const int> ks,
                             const KeepMaskModel& model, std::span<const uint8_t> always_keep = {});

// The same at fractions of the eligible tokens (tokens_for_fraction), by default ERASER's AOPC bins.
Faithfulness faithfulness(std::span<const double> scores, const KeepMaskModel& model,
                          std::span<const double> fractions = kAopcBins,
                          std::span<const uint8_t> always_keep = {});

}  // namespace triad::explain
