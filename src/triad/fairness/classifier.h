#pragma once
// A binary text classifier on a GPT trunk (issue 17's "classification on the trunk"): the trunk is the
// language model without its LM head (a Gpt whose shard stops after the last block, model/params.h); the
// head is the LM's final LayerNorm (fine-tuned from the checkpoint's ln_f), a pooling of the normalised
// hidden states over each sequence's own tokens, and one logit:
//
//   z_i = w · pool_{t < len_i} LN(h_{i,t}) + b          h: (B, T, C) the last block's output
//   pool = mean over the sequence's tokens, or its last token (the one that has seen them all: causal)
//
// Sequences are right-padded to T; the trunk is causal, so the padding never reaches a real token and
// pooling simply skips it. Templated on the scalar so the gradient checks run this very code in double.
//
//   forward(tokens, lengths, B, T)   -> logits (B)
//   forward(…, embedded)              the same from the embeddings (B, T, C) on a trunk built without its
//                                     embedding (explanations: gradients and paths in embedding space)
//   backward(dlogits[, dpooled])     trunk and head gradients += those of Σ_i dlogits_i z_i (+ dpooled ·
//   pool)

#include <cstdint>
#include <string>
#include <vector>

#include "triad/model/gpt.h"

namespace triad::fairness {

enum class Pooling { kMean, kLast };
Pooling parse_pooling(const std::string& name);  // "mean" | "last"
const char* pooling_name(Pooling pooling);

// The head's parameters in one flat buffer, by their checkpoint names.
struct HeadLayout {
  explicit HeadLayout(int C) : C(C) {}
  int C;
  size_t ln_w() const { return 0; }
  size_t ln_b() const { return static_cast<size_t>(C); }
  size_t w() const { return 2 * static_cast<size_t>(C); }
  size_t b() const { return 3 * static_cast<size_t>(C); }
  size_t count() const { return 3 * static_cast<size_t>(C) + 1; }
  // (name, offset, shape) of each tensor: ln_f.weight, ln_f.bias (the LM's names), cls.weight (1, C),
  // cls.bias (1).
  struct Tensor {
    std::string name;
    size_t offset, count;
    std::vector<int64_t> shape;
  };
  std::vector<Tensor> tensors() const;
};

// The trunk's shard: every block and (unless told not to) the embedding, no final LayerNorm or LM head.
ModelShard trunk_shard(const GptConfig& config, bool embedding = true);

template <typename Real>
class Classifier {
 public:
  Classifier(const GptConfig& config, Pooling pooling, bool embedding = true);

  Gpt<Real>& trunk() { return trunk_; }
  const Gpt<Real>& trunk() const { return trunk_; }
  const HeadLayout& head_layout() const { return head_layout_; }
  std::vector<Real>& head_params() { return head_params_; }
  const std::vector<Real>& head_params() const { return head_params_; }
  std::vector<Real>& head_grads() { return head_grads_; }
  Pooling pooling() const { return pooling_; }

  // A fresh head: LayerNorm gain 1, bias 0; w ~ N(0, 0.02); b = 0. (Loading an LM checkpoint then
  // overwrites the LayerNorm with the LM's ln_f.)
  void init_head(uint64_t seed);
  void zero_grads();

  // tokens (B, T) right-padded, lengths (B) in [1, T]. kTrain keeps what backward needs. A trunk without
  // its embedding reads `embedded` (B, T, C) instead (the tokens are still given and checked).
  const std::vector<Real>& forward(const int32_t* tokens, const int* lengths, int B, int T,
                                   typename Gpt<Real>::Pass pass = Gpt<Real>::Pass::kTrain,
                                   const Real* embedded = nullptr);
  const std::vector<Real>& logits() const { return logits_; }
  const std::vector<Real>& pooled() const { return pooled_; }  // (B, C), after the last forward
  // dlogits (B); dpooled (B, C) or null: a gradient reaching the pooled representation directly (an
  // adversary that reads it). Accumulates into trunk().grads() and head_grads().
  void backward(const Real* dlogits, const Real* dpooled = nullptr);
  // d/d embedded (B, T, C) after a backward, on a trunk without its embedding.
  const Real* input_grad() const { return trunk_.stage_input_grad(); }

 private:
  Gpt<Real> trunk_;
  HeadLayout head_layout_;
  Pooling pooling_;
  std::vector<Real> head_params_, head_grads_;
  int B_ = 0, T_ = 0;
  std::vector<int> lengths_;
  std::vector<Real> hidden_;  // (B, T, C) the trunk's output (copied: the trunk's unit is its own)
  std::vector<Real> normed_, mean_, rstd_, pooled_, logits_;
  std::vector<Real> dnormed_, dhidden_;
};

}  // namespace triad::fairness
