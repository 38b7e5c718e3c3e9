#pragma once
// Relevance of input tokens to a position's output through all the layers' attention (Abnar & Zuidema 2020,
// "Quantifying Attention Flow in Transformers"): attention rollout and attention flow.
//
// Input: one attention matrix per layer, A_l for l = 0 (the first block) .. L-1, each T x T row-major with
// rows = queries and columns = keys, every row a distribution (non-negative, summing to 1), averaged over
// heads by the caller. Causal (upper triangle 0) in triad's models, but nothing here needs it.
//
// The residual connection is folded in as in the paper: Â_l = r I + (1 - r) A_l with r = 0.5, rows
// renormalised to sum to 1 (they already do up to rounding).
//
// - Rollout: R = Â_{L-1} · ... · Â_1 · Â_0, T x T; R[t, j] is the share of input token j in the output at
//   position t, each row a distribution. It treats attention weights as proportions that multiply along
//   every path and add over paths.
// - Flow: the layer graph has a node (v, p) per level v = 0 (the embeddings) .. L (the last block's output)
//   and position p, and an edge (l + 1, i) -> (l, j) of capacity Â_l[i, j]. The flow of input j to output t
//   is the maximum flow from (L, t) to (0, j) — a separate max-flow per input, computed with Boost.Graph's
//   Boykov-Kolmogorov algorithm on the part of the graph reachable from (L, t).
//   Bounds: 0 <= R[t, j] <= flow(t, j) <= 1 (routing one unit from (L, t) in proportion to Â at every node
//   is a feasible flow that delivers R[t, j] to (0, j); the edges leaving (L, t) carry at most 1 in total),
//   and flow(t, j) <= sum_i Â_0[i, j], the capacity into (0, j). Unlike rollout, flows over j do not sum
//   to 1; normalise them if a distribution is needed.
//
// Cost: rollout O(L T^3); flow for one position T max-flows on <= (L + 1) T nodes and L T^2 edges.

#include <span>
#include <vector>

namespace triad::explain {

inline constexpr double kResidualWeight = 0.5;

// Checks `layers` (at least one, each tokens x tokens, finite, non-negative, rows summing to 1 within 1e-4)
// and returns Â_l of each: residual * I + (1 - residual) * A_l, rows renormalised.
std::vector<std::vector<double>> residual_attention(const std::vector<std::vector<double>>& layers,
                                                    int tokens, double residual = kResidualWeight);

// R = Â_{L-1} · ... · Â_0, row-major tokens x tokens.
std::vector<double> attention_rollout(const std::vector<std::vector<double>>& layers, int tokens,
                                      double residual = kResidualWeight);

// The max-flow from output `position` to each input token (tokens values).
std::vector<double> attention_flow(const std::vector<std::vector<double>>& layers, int tokens, int position,
                                   double residual = kResidualWeight);

// Gradient-weighted attention (Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability"): per
// layer Ā_l = mean over heads of (∂z/∂A_l ⊙ A_l)⁺, the positive part of each weight's first-order
// contribution to the score z; R = I, then R ← R + Ā_l · R for l = 0 .. L-1. Returned: R − I, so that a
// position's relevance to itself is what the attention gives it, not the identity's 1.
//   probs, grads: per layer, heads x tokens x tokens; `sign` −1 explains −z.
std::vector<double> gradient_weighted_rollout(const std::vector<std::vector<float>>& probs,
                                              const std::vector<std::vector<float>>& grads, int heads,
                                              int tokens, double sign = 1);

}  // namespace triad::explain
