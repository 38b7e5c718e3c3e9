#pragma once
// The GPT decoder: token + position embedding, L pre-LayerNorm blocks (causal self-attention, GELU MLP with
// 4x width, residuals), a final LayerNorm and an LM head tied to the token embedding.
//
// Parameters and gradients are two flat buffers laid out by ParameterLayout; activations come from an
// ActivationArena, one unit per (block, kind) of model/dataflow.h's table. Which units the forward keeps for
// the backward and which are recomputed is a RematPlan (default: keep all); the order of work is
// model/schedule.h's, the same the rematerialisation planner simulates. Templated on the scalar so gradient
// checks run the very same code in double.
//
//   forward(inputs, targets)   -> mean loss over B x T positions
//   backward(scale, on_done)   grads += d(scale · Σ losses)/dparams; calls on_done(block) as each parameter
//                              block's gradient becomes final (ln_f first, then h.L-1 ... h.0, embed last)

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "triad/core/arena.h"
#include "triad/model/config.h"
#include "triad/model/dataflow.h"
#include "triad/model/params.h"
#include "triad/model/plan.h"
#include "triad/model/schedule.h"

namespace triad {

template <typename Real>
class Gpt {
 public:
  explicit Gpt(const GptConfig& config);
  ~Gpt();

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

  void set_remat_plan(const RematPlan& plan);
  const RematPlan& remat_plan() const { return plan_; }

  // inputs, targets: (B, T) token ids, T <= seq_len. Without targets no loss is computed (returns 0).
  // kInference keeps nothing for a backward (every unit is freed after its last use).
  enum class Pass { kTrain, kInference };
  double forward(const int32_t* inputs, const int32_t* targets, int B, int T, Pass pass = Pass::kTrain);
  using BlockDone = std::function<void(int param_block)>;
  void backward(Real loss_scale, const BlockDone& on_block_done = nullptr);
  void release_activations();

  // Valid after forward while the units are live (a training forward keeps them until the backward, unless
  // the plan drops them).
  const Real* attention_probs(int layer) const;  // (B, NH, T, T)
  const Real* final_hidden() const;              // (B, T, C), after the final LayerNorm
  const Real* logits() const;                    // (B, T, V)
  const Real* losses() const;                    // (B, T)

  // Wall time of the op that produced each unit in the last forward, indexed [block + 1][kind], and the
  // time spent recomputing in the last backward.
  double unit_seconds(int block, Act kind) const {
    return unit_seconds_[static_cast<size_t>(block + 1)][static_cast<size_t>(kind)];
  }
  double recompute_seconds() const { return recompute_seconds_; }

 private:
  class Events;
  Real* unit(int block, Act kind) const {
    return static_cast<Real*>(arena_.get(block, static_cast<int>(kind)));
  }
  const Real* block_input(int l) const {
    return l == 0 ? unit(-1, Act::kEmbed) : unit(l - 1, Act::kBlockOut);
  }
  void compute_unit(int block, Act kind);
  void head_backward();
  void block_backward(int l);
  void embed_backward();

  GptConfig config_;
  ParameterLayout layout_;
  std::vector<Real> params_, grads_;
  GptTensors<Real> w_, g_;
  ActivationArena arena_;
  RematPlan plan_, inference_plan_;
  std::unique_ptr<StepSchedule> schedule_;
  std::vector<int32_t> inputs_, targets_;
  int B_ = 0, T_ = 0;
  Real loss_scale_ = 0;
  BlockDone on_block_done_;
  std::vector<std::array<double, static_cast<size_t>(Act::kCount)>> unit_seconds_;
  double recompute_seconds_ = 0;
};

}  // namespace triad
