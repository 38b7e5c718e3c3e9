#include "triad/model/gpt.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <utility>

#include "triad/core/error.h"
#include "triad/core/rng.h"
#include "triad/kernels/attention.h"
#include "triad/kernels/encoder.h"
#include "triad/kernels/gelu.h"
#include "triad/kernels/layernorm.h"
#include "triad/kernels/linear.h"
#include "triad/kernels/lm_head.h"
#include "triad/kernels/residual.h"

namespace triad {

// Runs the schedule's events on this model's kernels and arena.
template <typename Real>
class Gpt<Real>::Events : public StepEvents {
 public:
  explicit Events(Gpt& model) : m_(model) {}
  void compute(int block, Act kind, bool recompute) override {
    auto t0 = std::chrono::steady_clock::now();
    m_.compute_unit(block, kind);
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (recompute) {
      m_.recompute_seconds_ += dt;
    } else {
      m_.unit_seconds_[static_cast<size_t>(block + 1)][static_cast<size_t>(kind)] = dt;
    }
  }
  void release(int block, Act kind) override {
    m_.arena_.release(m_.arena_block(block), static_cast<int>(kind));
  }
  void head_backward() override { m_.head_backward(); }
  void block_backward(int block) override { m_.block_backward(block); }
  void embed_backward() override { m_.embed_backward(); }

 private:
  Gpt& m_;
};

template <typename Real>
Gpt<Real>::Gpt(const GptConfig& config, const ModelShard& shard, TensorGroup* tensor_group)
    : config_(config),
      layout_(config, shard),
      tensor_group_(tensor_group),
      layers_(shard.blocks),
      tensor_(shard.tensor_size),
      vocab_(config.vocab / shard.tensor_size),
      vocab0_(shard.tensor_rank * vocab_),
      params_(layout_.count()),
      grads_(layout_.count()),
      arena_([](int kind) { return act_name(static_cast<Act>(kind)); }),
      plan_(RematPlan::keep_all(shard.blocks)),
      inference_plan_{std::vector<uint16_t>(static_cast<size_t>(shard.blocks), 0)},
      slots_(1),
      s_(&slots_[0]),
      unit_seconds_(static_cast<size_t>(shard.blocks) + 1) {
  config.validate();
  shard.validate(config);
  if (tensor_ > 1 && !tensor_group) fail("internal: a tensor-parallel shard without its group");
  w_ = tensor_views(layout_, params_.data());
  g_ = tensor_views(layout_, grads_.data());
  inference_plan_.normalize();
}

template <typename Real>
Gpt<Real>::~Gpt() = default;

template <typename Real>
void Gpt<Real>::init_weights(uint64_t seed) {
  // The whole model's values in its order (one tensor at a time); each tensor keeps its slice, if held.
  Rng rng(seed);
  const double residual_std = 0.02 / std::sqrt(2.0 * config_.layers);
  std::vector<Real> whole;
  const ParameterLayout whole_layout(config_);
  for (const TensorSpec& w : whole_layout.tensors()) {
    whole.resize(w.count);
    const bool is_weight = w.name.ends_with(".weight");
    if (w.shape.size() == 1) {  // LayerNorm gains 1, all biases 0
      std::fill(whole.begin(), whole.end(), Real(is_weight ? 1 : 0));
    } else {
      const bool residual = w.name.ends_with("attn.proj.weight") || w.name.ends_with("mlp.proj.weight");
      const double std = residual ? residual_std : 0.02;
      for (Real& x : whole) x = static_cast<Real>(std * rng.normal());
    }
    if (const TensorSpec* t = layout_.find(w.name)) copy_slice(*t, whole.data(), params_.data() + t->offset);
  }
}

template <typename Real>
void Gpt<Real>::zero_grads() {
  std::memset(grads_.data(), 0, grads_.size() * sizeof(Real));
}

template <typename Real>
void Gpt<Real>::set_remat_plan(const RematPlan& plan) {
  if (plan.layers() != layers_)
    fail("internal: a plan for {} blocks on a {}-block model", plan.layers(), layers_);
  plan_ = plan;
  plan_.normalize();
}

template <typename Real>
void Gpt<Real>::use_slot(int slot) {
  if (slot < 0) fail("internal: activation slot {}", slot);
  if (static_cast<size_t>(slot) >= slots_.size()) slots_.resize(static_cast<size_t>(slot) + 1);
  slot_ = slot;
  s_ = &slots_[static_cast<size_t>(slot)];
}

template <typename Real>
void Gpt<Real>::tensor_sum(Real* values, size_t count, const char* what) {
  if (tensor_ == 1) return;
  if constexpr (std::is_same_v<Real, float>) {
    tensor_group_->sum(values, count, what);
  } else {
    fail("internal: tensor parallelism runs in float only");
  }
}

template <typename Real>
typename Gpt<Real>::Scratch Gpt<Real>::scratch() const {
  const size_t BT = static_cast<size_t>(s_->B) * s_->T, A = static_cast<size_t>(config_.attention_width());
  const size_t narrow = BT * std::max(static_cast<size_t>(config_.d_model), A / tensor_);  // dC
  const size_t wide =
      BT * std::max(static_cast<size_t>(config_.mlp()), 3 * A) / tensor_;  // MLP units, or q|k|v
  Real* base = unit(-1, Act::kScratch);
  return {base, base + narrow, base + narrow + wide, base + narrow + 2 * wide};
}

// Token + position embedding; vocabulary-parallel: each rank looks up the tokens in its rows (zeros for the
// others), the group sums the parts, then positions are added. A later pipeline stage copies its input in.
template <typename Real>
void Gpt<Real>::embed_forward(Real* out) {
  const int B = s_->B, T = s_->T, C = config_.d_model;
  const size_t BTC = static_cast<size_t>(B) * T * C;
  if (!shard().embedding) {
    std::memcpy(out, s_->stage_input, BTC * sizeof(Real));
  } else if (tensor_ == 1) {
    encoder_forward(out, s_->inputs.data(), w_.wte, w_.wpe, B, T, C);
  } else {
    embedding_lookup(out, s_->inputs.data(), w_.wte, vocab0_, vocab_, B * T, C);
    tensor_sum(out, BTC, "vocabulary-parallel embedding");
    position_add(out, w_.wpe, B, T, C);
  }
}

// Per-position losses. Vocabulary-parallel: each rank's logsumexp over its slice, combined as
// lse = m + log Σ exp(lse_r − m) with m the maximum over ranks, and the target's logit from its owner.
template <typename Real>
void Gpt<Real>::loss_forward(Real* out) {
  const int M = s_->B * s_->T, C = config_.d_model;
  Real *losses = out, *lse = out + M;
  // Without kept logits the loss computes them slice by slice: that time is the logits' cost.
  const int32_t* targets = s_->targets.data();
  if (tensor_ > 1) std::fill(losses, losses + M, Real(0));
  double seconds = 0;
  if (s_->soft_targets) {
    s_->soft_stats.resize(3 * static_cast<size_t>(M));
    seconds = lm_head_distill_loss(losses, lse, s_->soft_stats.data(), unit(-1, Act::kLogits),
                                   unit(-1, Act::kLogitsSlice), unit(-1, Act::kLnf), w_.wte, targets,
                                   *s_->soft_targets, M, C, vocab_);
  } else {
    seconds = lm_head_loss(losses, lse, unit(-1, Act::kLogits), unit(-1, Act::kLogitsSlice),
                           unit(-1, Act::kLnf), w_.wte, targets, M, C, vocab_);
  }
  if (seconds > 0) unit_seconds_[0][static_cast<size_t>(Act::kLogits)] = seconds;
  if (tensor_ == 1) return;
  if constexpr (std::is_same_v<Real, float>) {
    const Real* x = unit(-1, Act::kLnf);
    std::vector<float> peak(lse, lse + M), parts(2 * static_cast<size_t>(M));
    tensor_group_->max(peak.data(), peak.size(), "vocabulary-parallel cross-entropy");
    for (int n = 0; n < M; ++n) {
      parts[n] = std::exp(lse[n] - peak[n]);
      const int32_t t = s_->targets[n];  // the target's logit, on the rank that holds its row
      if (t < 0) continue;
      const Real *a = x + static_cast<size_t>(n) * C, *b = w_.wte + static_cast<size_t>(t) * C;
      float z = 0;
      for (int c = 0; c < C; ++c) z += a[c] * b[c];
      parts[M + n] = z;
    }
    tensor_group_->sum(parts.data(), parts.size(), "vocabulary-parallel cross-entropy");
    for (int n = 0; n < M; ++n) {
      lse[n] = peak[n] + std::log(parts[n]);
      losses[n] = lse[n] - parts[M + n];
    }
  }
}

template <typename Real>
void Gpt<Real>::compute_unit(int l, Act kind) {
  const int B = s_->B, T = s_->T, C = config_.d_model;
  const int Al = config_.attention_width() / tensor_, NHl = config_.heads / tensor_;  // this rank's heads
  const int Fl = config_.mlp() / tensor_;                                             // and MLP units
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  const int M = static_cast<int>(BT);
  Real* out = arena_.template acquire<Real>(arena_block(l), static_cast<int>(kind),
                                            unit_elements(config_, B, T, kind, tensor_));
  // A row-parallel linear: partial products summed over the tensor group, then the bias once.
  auto row_parallel = [&](const Real* in, const Real* weight, const Real* bias, int in_features,
                          const char* what) {
    linear_forward(out, in, weight, static_cast<const Real*>(nullptr), M, in_features, C);
    tensor_sum(out, BTC, what);
    add_bias(out, bias, M, C);
  };
  if (l < 0) {
    switch (kind) {
      case Act::kEmbed:
        return embed_forward(out);
      case Act::kLnf:
        layernorm_forward(out, out + BTC, out + BTC + BT, unit(layers_ - 1, Act::kBlockOut), w_.lnf_w,
                          w_.lnf_b, M, C);
        return;
      case Act::kLogits:
        lm_head_logits(out, unit(-1, Act::kLnf), w_.wte, M, C, vocab_);
        return;
      case Act::kLoss:
        return loss_forward(out);
      default:
        return;  // kScratch, kLogitsSlice: buffers, nothing to compute
    }
  }
  const BlockTensors<Real>& w = w_.blocks[l];
  switch (kind) {
    case Act::kLn1:
      layernorm_forward(out, out + BTC, out + BTC + BT, block_input(l), w.ln1_w, w.ln1_b, M, C);
      return;
    case Act::kQkv:
      linear_forward(out, unit(l, Act::kLn1), w.qkv_w, w.qkv_b, M, C, 3 * Al);
      return;
    case Act::kAttProbs:
      triad::attention_probs(out, unit(l, Act::kQkv), B, T, Al, NHl);
      return;
    case Act::kAttOut:
      attention_values(out, unit(l, Act::kAttProbs), unit(l, Act::kQkv), B, T, Al, NHl);
      return;
    case Act::kRes2:
      row_parallel(unit(l, Act::kAttOut), w.proj_w, w.proj_b, Al, "tensor-parallel attention projection");
      accumulate(out, block_input(l), BTC);
      return;
    case Act::kLn2:
      layernorm_forward(out, out + BTC, out + BTC + BT, unit(l, Act::kRes2), w.ln2_w, w.ln2_b, M, C);
      return;
    case Act::kFc:
      linear_forward(out, unit(l, Act::kLn2), w.fc_w, w.fc_b, M, C, Fl);
      return;
    case Act::kGelu:
      gelu_forward(out, unit(l, Act::kFc), BT * Fl);
      return;
    case Act::kBlockOut:
      row_parallel(unit(l, Act::kGelu), w.fcproj_w, w.fcproj_b, Fl, "tensor-parallel MLP projection");
      accumulate(out, unit(l, Act::kRes2), BTC);
      return;
    default:
      fail("internal: cannot compute {}", act_name(kind));
  }
}

template <typename Real>
double Gpt<Real>::forward(const int32_t* inputs, const int32_t* targets, int B, int T, Pass pass,
                          const Real* stage_input) {
  if (T > config_.seq_len) fail_usage("sequence length {} exceeds the model's {}", T, config_.seq_len);
  if (!shard().embedding && !stage_input)
    fail("internal: a later pipeline stage's forward without its input");
  const int V = config_.vocab;
  const size_t BT = static_cast<size_t>(B) * T;
  release_activations();
  Slot& s = *s_;
  s.B = B;
  s.T = T;
  s.stage_input = stage_input;
  s.soft_targets = std::exchange(soft_targets_, nullptr);  // for this forward only
  if (s.soft_targets && tensor_ > 1) fail("internal: distillation under vocabulary parallelism");
  s.inputs.assign(inputs, inputs + BT);
  for (int32_t t : s.inputs) {
    if (t < 0 || t >= V) fail("token id {} is outside the model's vocabulary of {}", t, V);
  }
  if (targets) {
    s.targets.resize(BT);
    for (size_t i = 0; i < BT; ++i) {
      const int32_t t = targets[i];
      if (t < 0 || t >= V) fail("target id {} is outside the model's vocabulary of {}", t, V);
      s.targets[i] = t >= vocab0_ && t < vocab0_ + vocab_ ? t - vocab0_ : -1;
    }
  }
  s.schedule =
      std::make_unique<StepSchedule>(pass == Pass::kTrain ? plan_ : inference_plan_, layers_, shard().head);
  Events events(*this);
  s.schedule->forward(events, targets != nullptr);
  s.stage_input = nullptr;
  loss_sum_ = hard_loss_sum_ = 0;
  if (!targets || !shard().head) return 0.0;
  const Real* loss = unit(-1, Act::kLoss);
  for (size_t i = 0; i < BT; ++i) loss_sum_ += loss[i];
  hard_loss_sum_ = loss_sum_;
  if (s.soft_targets) {
    hard_loss_sum_ = 0;
    for (size_t i = 0; i < BT; ++i) hard_loss_sum_ += s.soft_stats[2 * BT + i];
  }
  return loss_sum_ / static_cast<double>(BT);
}

template <typename Real>
void Gpt<Real>::backward(Real loss_scale, const BlockDone& on_block_done, const Real* output_grad) {
  const bool ready =
      shard().head ? arena_.live(arena_block(-1), static_cast<int>(Act::kLoss)) : output_grad != nullptr;
  if (!s_->schedule || !ready) fail("internal: backward without a training forward on targets");
  loss_scale_ = loss_scale;
  on_block_done_ = on_block_done;
  s_->output_grad = output_grad;
  recompute_seconds_ = 0;
  Events events(*this);
  s_->schedule->backward(events);
  s_->schedule.reset();
  s_->output_grad = nullptr;
  on_block_done_ = nullptr;
}

template <typename Real>
void Gpt<Real>::head_backward() {
  const int C = config_.d_model;
  const size_t BT = static_cast<size_t>(s_->B) * s_->T, BTC = BT * C;
  const int M = static_cast<int>(BT);
  const Scratch d = scratch();
  if (!shard().head) {  // the next stage's gradient of this stage's output
    std::memcpy(d.dres, s_->output_grad, BTC * sizeof(Real));
    return;
  }
  // Through the LM head (tied embedding) — recomputing logit slices if they were not kept — and the final
  // LayerNorm.
  Real* lnf = unit(-1, Act::kLnf);
  std::memset(d.dC, 0, BTC * sizeof(Real));
  const int32_t* targets = s_->targets.data();
  Real *logits = unit(-1, Act::kLogits), *slice = unit(-1, Act::kLogitsSlice);
  const Real* lse = unit(-1, Act::kLoss) + BT;
  recompute_seconds_ +=
      s_->soft_targets
          ? lm_head_distill_backward(d.dC, g_.wte, logits, slice, lnf, w_.wte, targets, lse,
                                     s_->soft_stats.data(), *s_->soft_targets, loss_scale_, M, C, vocab_)
          : lm_head_backward(d.dC, g_.wte, logits, slice, lnf, w_.wte, targets, lse, loss_scale_, M, C,
                             vocab_);
  tensor_sum(d.dC, BTC, "vocabulary-parallel LM head backward");
  std::memset(d.dres, 0, BTC * sizeof(Real));
  layernorm_backward(d.dres, g_.lnf_w, g_.lnf_b, d.dC, unit(layers_ - 1, Act::kBlockOut), w_.lnf_w, lnf + BTC,
                     lnf + BTC + BT, M, C);
  if (on_block_done_) on_block_done_(static_cast<int>(layout_.blocks().size()) - 1);  // ln_f: the last
}

template <typename Real>
void Gpt<Real>::block_backward(int l) {
  const int B = s_->B, T = s_->T, C = config_.d_model;
  const int Al = config_.attention_width() / tensor_, NHl = config_.heads / tensor_;
  const int Fl = config_.mlp() / tensor_;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C, BTAl = BT * Al, BTFl = BT * Fl;
  const int M = static_cast<int>(BT);
  const BlockTensors<Real>& w = w_.blocks[l];
  const BlockTensors<Real>& g = g_.blocks[l];
  const Scratch d = scratch();
  Real *dC = d.dC, *d4a = d.d4a, *d4b = d.d4b, *dres = d.dres;
  Real *ln1 = unit(l, Act::kLn1), *qkv = unit(l, Act::kQkv), *att = unit(l, Act::kAttProbs);
  Real *atty = unit(l, Act::kAttOut), *res2 = unit(l, Act::kRes2), *ln2 = unit(l, Act::kLn2);
  Real *fc = unit(l, Act::kFc), *gelu = unit(l, Act::kGelu);
  const Real* x = block_input(l);

  // out = res2 + fcproj(gelu(fc(ln2(res2)))); fc is column-parallel: its input gradient is summed
  std::memset(d4a, 0, BTFl * sizeof(Real));
  linear_backward(d4a, g.fcproj_w, g.fcproj_b, dres, gelu, w.fcproj_w, M, Fl, C);
  std::memset(d4b, 0, BTFl * sizeof(Real));
  gelu_backward(d4b, fc, d4a, BTFl);
  std::memset(dC, 0, BTC * sizeof(Real));
  linear_backward(dC, g.fc_w, g.fc_b, d4b, ln2, w.fc_w, M, C, Fl);
  tensor_sum(dC, BTC, "tensor-parallel MLP backward");
  layernorm_backward(dres, g.ln2_w, g.ln2_b, dC, res2, w.ln2_w, ln2 + BTC, ln2 + BTC + BT, M,
                     C);  // dres = d res2
  // res2 = x + proj(attention(qkv(ln1(x)))); qkv is column-parallel
  std::memset(dC, 0, BTAl * sizeof(Real));  // d atty (B, T, A / tensor)
  linear_backward(dC, g.proj_w, g.proj_b, dres, atty, w.proj_w, M, Al, C);
  Real* dqkv = d4a;
  std::memset(dqkv, 0, 3 * BTAl * sizeof(Real));
  Real* datt = nullptr;
  if (keep_attention_grads_) {
    attention_grads_.resize(static_cast<size_t>(layers_));
    attention_grads_[l].resize(BT * NHl * T);
    datt = attention_grads_[l].data();
  }
  attention_backward(dqkv, dC, qkv, att, B, T, Al, NHl, datt);
  std::memset(dC, 0, BTC * sizeof(Real));
  linear_backward(dC, g.qkv_w, g.qkv_b, dqkv, ln1, w.qkv_w, M, C, 3 * Al);
  tensor_sum(dC, BTC, "tensor-parallel attention backward");
  layernorm_backward(dres, g.ln1_w, g.ln1_b, dC, x, w.ln1_w, ln1 + BTC, ln1 + BTC + BT, M, C);  // dres = d x
  if (on_block_done_) on_block_done_((shard().embedding ? 1 : 0) + l);  // after the embedding's, if held
}

template <typename Real>
void Gpt<Real>::embed_backward() {
  const int B = s_->B, T = s_->T, C = config_.d_model;
  const Real* dout = scratch().dres;
  if (!shard().embedding) {  // the previous stage's: kept past the scratch's release
    input_grad_.assign(dout, dout + static_cast<size_t>(B) * T * C);
    return;
  }
  if (tensor_ == 1) {
    encoder_backward(g_.wte, g_.wpe, dout, s_->inputs.data(), B, T, C);
  } else {
    embedding_backward(g_.wte, dout, s_->inputs.data(), vocab0_, vocab_, B * T, C);
    position_backward(g_.wpe, dout, B, T, C);
  }
  if (on_block_done_) on_block_done_(0);
}

template <typename Real>
const Real* Gpt<Real>::stage_output() const {
  return unit(layers_ - 1, Act::kBlockOut);
}

template <typename Real>
const Real* Gpt<Real>::stage_input_grad() const {
  return input_grad_.data();
}

template <typename Real>
void Gpt<Real>::release_activations() {
  const int first = arena_block(-1), last = arena_block(layers_ - 1);
  for (const UnitStats& u : arena_.units()) {
    if (u.block >= first && u.block <= last) arena_.release(u.block, u.kind);
  }
  s_->schedule.reset();
}

template <typename Real>
const Real* Gpt<Real>::attention_probs(int layer) const {
  return unit(layer, Act::kAttProbs);
}
template <typename Real>
const Real* Gpt<Real>::final_hidden() const {
  return unit(-1, Act::kLnf);
}
template <typename Real>
const Real* Gpt<Real>::logits() const {
  return unit(-1, Act::kLogits);
}
template <typename Real>
const Real* Gpt<Real>::losses() const {
  return unit(-1, Act::kLoss);
}

template class Gpt<float>;
template class Gpt<double>;

}  // namespace triad
