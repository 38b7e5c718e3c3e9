#pragma once
// Per-word relevance toward a label, by the methods explanations are compared with (issue 18). Every
// method scores the words of one input (words.h) toward `label` (the classifier's prediction, usually):
// higher = more for that label. Token scores are summed into their words.
//
//   attention   the last block's attention, averaged over heads, paid to each token by the positions the
//               pooling reads (every position for mean pooling, the last for last-token pooling)
//   rollout     the same read through attention rollout over all layers (attention_graph.h)
//   flow        attention flow (max-flow, Boost.Graph) to the last position, which has seen every token
//   grad_attention  gradient-weighted attention rollout (Chefer et al. 2021, attention_graph.h) read by
//               the pooled positions: attention weights kept where they raise the score toward the label
//   grad_input  Σ_c (dz/de_tc) e_tc: gradient × token embedding (z the logit, signed toward the label)
//   ig          integrated gradients from the zero token embedding (positions kept):
//               e_tc · ∫₀¹ dz/de_tc(α e) dα, by the midpoint rule or Gauss–Legendre in `ig_steps` points,
//               `ig_batch` points per forward so memory stays bounded whatever the steps
//   occlusion   p(label | x) − p(label | x without the word)        (leave-one-out; the word dropped)
//   lime        LIME's text explainer (Ribeiro et al. 2016): `lime_samples` inputs with random words dropped
//               (the count uniform in 1..W, then which ones), weighted by exp(−d²/0.25²)^½ with d the cosine
//               distance to the input, fitted by weighted ridge (α = 1) to p(label): the coefficients
//   shap        KernelSHAP (Lundberg & Lee 2017) of p(label) with dropped words as absent players: every
//               coalition when there are at most `shap_samples` of them (exact Shapley values), else
//               coalition sizes sampled in proportion to the Shapley kernel (weights then equal)
//
// Attention-based scores are unsigned (they say where the model looked, not which way); grad_attention's
// keep only the direction of the label. For a language model (probe.h) the label is its next token and
// p(label) = p(that token | the words kept).

#include <cstdint>
#include <string>
#include <vector>

#include "triad/explain/eraser.h"
#include "triad/explain/probe.h"
#include "triad/explain/words.h"

namespace triad::explain {

enum class Method {
  kAttention,
  kRollout,
  kFlow,
  kGradAttention,
  kGradInput,
  kIntegratedGradients,
  kOcclusion,
  kLime,
  kShap
};
Method parse_method(const std::string& name);
const char* method_name(Method method);
std::vector<Method> all_methods();

struct MethodOptions {
  int ig_steps = 256;  // the straight path from the zero embedding can be sharp: see docs/explain.md
  bool ig_gauss_legendre = false;
  int ig_batch = 16;
  int lime_samples = 500;
  int shap_samples = 512;
  uint64_t seed = 1;
};

// p(label | the words whose keep flag is 1), for each mask; an all-zero mask is the empty input.
std::vector<double> label_probabilities(Probe& probe, const Words& words, int label,
                                        const std::vector<std::vector<uint8_t>>& keep_masks);

// ERASER's model callback for `words` (eraser.h): p(label) of the kept words.
KeepMaskModel keep_mask_model(Probe& probe, const Words& words, int label);

// Per-word scores toward `label` (0 or 1).
std::vector<double> explain_words(Probe& probe, const Words& words, Method method, int label,
                                  const MethodOptions& options = {});

// Integrated gradients' points (α, weight) on [0, 1]: the midpoint rule, or Gauss–Legendre (4, 8, 16, 32
// or 64 points).
std::vector<std::pair<double, double>> path_nodes(int steps, bool gauss_legendre);

// The attention part, shared with the rule engine: per-token scores of the last block (`attention`).
std::vector<double> last_block_attention(Probe& probe, const std::vector<int32_t>& tokens);
// The same head by head, per word: NH score vectors.
std::vector<std::vector<double>> last_block_attention_heads(Probe& probe, const Words& words);

}  // namespace triad::explain
