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
//
// Model parallelism (Tier I): a Gpt may hold a shard (model/params.h) — a pipeline stage's blocks, and the
// tensor-parallel slice of each layer, summing partial results over a TensorGroup: once after each
// row-parallel projection in the forward, once after each column-parallel layer's input gradient in the
// backward, the vocabulary-parallel embedding's lookup, and the cross-entropy's maxima and sums (the whole
// logits never exist on one rank). A stage without the embedding takes its input activations from the
// previous stage; one without the head hands its output on and takes its gradient back. Pipeline schedules
// keep several micro-batches in flight, each in its own slot of activations.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "triad/core/arena.h"
#include "triad/core/zero_pages.h"
#include "triad/kernels/lm_head.h"
#include "triad/model/config.h"
#include "triad/model/dataflow.h"
#include "triad/model/params.h"
#include "triad/model/plan.h"
#include "triad/model/schedule.h"
#include "triad/model/tensor_group.h"

namespace triad {

template <typename Real>
class Gpt {
 public:
  explicit Gpt(const GptConfig& config) : Gpt(config, ModelShard::whole(config)) {}
  // `tensor_group` sums over the ranks holding the other slices; required when shard.tensor_size > 1.
  Gpt(const GptConfig& config, const ModelShard& shard, TensorGroup* tensor_group = nullptr);
  ~Gpt();

  const GptConfig& config() const { return config_; }
  const ModelShard& shard() const { return layout_.shard(); }
  const ParameterLayout& layout() const { return layout_; }
  size_t num_params() const { return layout_.count(); }
  Real* params() { return params_.data(); }
  const Real* params() const { return params_.data(); }
  Real* grads() { return grads_.data(); }
  const Real* grads() const { return grads_.data(); }
  ActivationArena& arena() { return arena_; }
  TensorGroup* tensor_group() const { return tensor_group_; }  // null without tensor parallelism

  // GPT-2 initialisation: N(0, 0.02) weights, residual projections scaled by 1/sqrt(2L), zero biases,
  // unit LayerNorm gains. A shard draws the whole model's values and keeps its slices, so every layout
  // starts from the same weights.
  void init_weights(uint64_t seed);
  void zero_grads();

  void set_remat_plan(const RematPlan& plan);
  const RematPlan& remat_plan() const { return plan_; }

  // inputs, targets: (B, T) token ids, T <= seq_len. Without targets no loss is computed (returns 0).
  // kInference keeps nothing for a backward (every unit is freed after its last use). A stage without the
  // embedding reads its input from `stage_input` ((B, T, C), copied); without the head it returns 0 and
  // its output is stage_output().
  enum class Pass { kTrain, kInference };
  double forward(const int32_t* inputs, const int32_t* targets, int B, int T, Pass pass = Pass::kTrain,
                 const Real* stage_input = nullptr);
  // block: the index in layout().blocks() whose gradient is final.
  using BlockDone = std::function<void(int param_block)>;
  // A stage without the head takes the gradient of its output (B, T, C); without the embedding, the
  // gradient of its input is stage_input_grad() afterwards.
  void backward(Real loss_scale, const BlockDone& on_block_done = nullptr, const Real* output_grad = nullptr);
  const Real* stage_output() const;
  const Real* stage_input_grad() const;
  // Selects the slot of activations the next forward and backward use (pipeline schedules keep up to
  // `slots` micro-batches in flight). Slot 0 is selected by default.
  void use_slot(int slot);
  // Frees the activations of the selected slot.
  void release_activations();

  // Valid after forward while the units are live (a training forward keeps them until the backward, unless
  // the plan drops them).
  const Real* attention_probs(int layer) const;  // (B, NH, T, T)
  const Real* final_hidden() const;              // (B, T, C), after the final LayerNorm
  // With keep_attention_grads(true), each backward also keeps d(scale · Σ losses)/d attention_probs(layer),
  // (B, NH, T, T) per layer (explanations: gradient-weighted attention). Off by default: it costs L·B·NH·T².
  void keep_attention_grads(bool keep) { keep_attention_grads_ = keep; }
  const Real* attention_grads(int layer) const {
    return attention_grads_.at(static_cast<size_t>(layer)).data();
  }
  const Real* logits() const;  // (B, T, V)
  const Real* losses() const;  // (B, T)
  // Σ over this rank's positions of the loss, from the last forward (0 on a stage without the head).
  double loss_sum() const { return loss_sum_; }

  // Knowledge distillation: the next forward on targets has lm_head_distill_loss's loss, the hard targets'
  // cross-entropy mixed with the KL divergence from `teacher`'s soft targets, and its backward that loss's
  // gradient. `teacher` must stay valid until that backward. Without vocabulary parallelism.
  void set_soft_targets(const SoftTargets<Real>* teacher) { soft_targets_ = teacher; }
  // Σ of the last forward's cross-entropy on the hard targets: loss_sum() unless distilling.
  double hard_loss_sum() const { return hard_loss_sum_; }

  // Wall time of the op that produced each unit in the last forward, indexed [block + 1][kind], and the
  // time spent recomputing in the last backward.
  double unit_seconds(int block, Act kind) const {
    return unit_seconds_[static_cast<size_t>(block + 1)][static_cast<size_t>(kind)];
  }
  double recompute_seconds() const { return recompute_seconds_; }

 private:
  class Events;
  // One micro-batch's forward-to-backward state.
  struct Slot {
    std::unique_ptr<StepSchedule> schedule;
    std::vector<int32_t> inputs;
    // Each target as a row of this rank's vocabulary slice (target - its first id), or -1 when another
    // rank holds it; with the whole vocabulary, the targets themselves.
    std::vector<int32_t> targets;
    int B = 0, T = 0;
    const Real* stage_input = nullptr;                // during the forward
    const Real* output_grad = nullptr;                // during the backward
    const SoftTargets<Real>* soft_targets = nullptr;  // distilling: the teacher's, and
    std::vector<Real> soft_stats;                     // lm_head_distill_loss's statistics (3, B T)
  };
  // The arena numbers units by block; each slot has its own range of block numbers.
  int arena_block(int block) const { return slot_ * (layers_ + 1) + block; }
  Real* unit(int block, Act kind) const {
    return static_cast<Real*>(arena_.get(arena_block(block), static_cast<int>(kind)));
  }
  const Real* block_input(int l) const {
    return l == 0 ? unit(-1, Act::kEmbed) : unit(l - 1, Act::kBlockOut);
  }
  // The backward's gradient buffers in the scratch unit: [dC | d4a | d4b | dres]; dC max(C, A / tensor)
  // wide (the residual stream, or this rank's attention output), d4a and d4b max(F, 3A) / tensor (MLP
  // units, or q|k|v), dres C.
  struct Scratch {
    Real *dC, *d4a, *d4b, *dres;
  };
  Scratch scratch() const;
  void tensor_sum(Real* values, size_t count, const char* what);
  void compute_unit(int block, Act kind);
  void embed_forward(Real* out);
  void loss_forward(Real* out);
  void head_backward();
  void block_backward(int l);
  void embed_backward();

  bool keep_attention_grads_ = false;
  std::vector<std::vector<Real>> attention_grads_;  // per layer, when kept

  GptConfig config_;
  ParameterLayout layout_;
  TensorGroup* tensor_group_;
  int layers_;                  // blocks this shard holds
  int tensor_ = 1;              // tensor-parallel ranks
  int vocab_ = 0, vocab0_ = 0;  // this rank's vocabulary rows [vocab0_, vocab0_ + vocab_)
  // Allocated without being written: the fused update keeps the gradient's resident pages one block large.
  std::vector<Real, ZeroPagesAllocator<Real>> params_, grads_;
  GptTensors<Real> w_, g_;
  ActivationArena arena_;
  RematPlan plan_, inference_plan_;
  std::vector<Slot> slots_;
  int slot_ = 0;
  Slot* s_;  // &slots_[slot_]
  double loss_sum_ = 0, hard_loss_sum_ = 0;
  const SoftTargets<Real>* soft_targets_ = nullptr;  // for the next forward
  std::vector<Real> input_grad_;  // a later stage's gradient of its input, after the backward
  Real loss_scale_ = 0;
  BlockDone on_block_done_;
  std::vector<std::array<double, static_cast<size_t>(Act::kCount)>> unit_seconds_;
  double recompute_seconds_ = 0;
};

}  // namespace triad
