#pragma once
// The GPT decoder: token + position embedding, L pre-LayerNorm blocks (causal self-attention, GELU MLP with
// 4x width, residuals), a final LayerNorm and an LM head tied to the token embedding.
//
// Parameters and gradients are two flat buffers laid out by ParameterLayout; activations come from an
// ActivationArena, one unit per (block, tensor kind), live from the forward until the backward of their
// block has used them. Templated on the scalar so the gradient checks can run the very same code in double.
//
//   forward(inputs, targets)   -> mean loss over B x T positions; keeps activations
//   backward(scale, on_done)   grads += d(scale · Σ losses)/dparams; calls on_done(block) as each parameter
//                              block's gradient becomes final (ln_f first, then h.L-1 ... h.0, embed last)

#include <cstdint>
#include <functional>
#include <vector>

#include "triad/core/arena.h"
#include "triad/model/config.h"
#include "triad/model/params.h"

namespace triad {

template <typename Real>
class Gpt {
 public:
  explicit Gpt(const GptConfig& config);

  const GptConfig& config() const { return config_; }
  const ParameterLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.count(); }
  Real* params() { return params_.data(); }
  const Real* params() const { return params_.data(); }
  Real* grads() { return grads_.data(); }
  const Real* grads() const { return grads_.data(); }
  ActivationArena& arena() { return arena_; }

  // GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2L), zero biases,
  // unit LayerNorm gains.
  void init_weights(uint64_t seed);
  void zero_grads();

  // inputs, targets: (B, T) token ids, T <= seq_len. Without targets no loss is computed (returns 0).
  double forward(const int32_t* inputs, const int32_t* targets, int B, int T);
  using BlockDone = std::function<void(int param_block)>;
  void backward(Real loss_scale, const BlockDone& on_block_done = nullptr);
  void release_activations();

  // Valid after forward, until backward releases them.
  const Real* attention_probs(int layer) const;  // (B, NH, T, T)
  const Real* final_hidden() const;              // (B, T, C), after the final LayerNorm
  const Real* logits() const;                    // (B, T, V)
  const Real* losses() const;                    // (B, T)

 private:
  const Real* block_input(int l) const;
  void block_forward(int l);
  void block_backward(int l, Real* dres);
  Real* unit(int block, Act kind) const { return static_cast<Real*>(arena_.get(block, kind)); }

  GptConfig config_;
  ParameterLayout layout_;
  std::vector<Real> params_, grads_;
  GptTensors<Real> w_, g_;
  ActivationArena arena_;
  std::vector<int32_t> inputs_, targets_;
  int B_ = 0, T_ = 0;
};

}  // namespace triad
