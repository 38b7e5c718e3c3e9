#include "triad/model/gpt.h"

#include <chrono>
#include <cmath>
#include <cstring>

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
  void release(int block, Act kind) override { m_.arena_.release(block, static_cast<int>(kind)); }
  void head_backward() override { m_.head_backward(); }
  void block_backward(int block) override { m_.block_backward(block); }
  void embed_backward() override { m_.embed_backward(); }

 private:
  Gpt& m_;
};

template <typename Real>
Gpt<Real>::Gpt(const GptConfig& config)
    : config_(config),
      layout_(config),
      params_(layout_.count()),
      grads_(layout_.count()),
      arena_([](int kind) { return act_name(static_cast<Act>(kind)); }),
      plan_(RematPlan::keep_all(config.layers)),
      inference_plan_{std::vector<uint16_t>(static_cast<size_t>(config.layers), 0)},
      unit_seconds_(static_cast<size_t>(config.layers) + 1) {
  config.validate();
  w_ = tensor_views(layout_, params_.data());
  g_ = tensor_views(layout_, grads_.data());
  inference_plan_.normalize();
}

template <typename Real>
Gpt<Real>::~Gpt() = default;

template <typename Real>
void Gpt<Real>::init_weights(uint64_t seed) {
  Rng rng(seed);
  const double residual_std = 0.02 / std::sqrt(2.0 * config_.layers);
  for (const TensorSpec& t : layout_.tensors()) {
    Real* p = params_.data() + t.offset;
    const bool is_weight = t.name.ends_with(".weight");
    if (t.shape.size() == 1) {  // LayerNorm gains 1, all biases 0
      std::fill(p, p + t.count, Real(is_weight ? 1 : 0));
      continue;
    }
    const bool residual = t.name.ends_with("attn.proj.weight") || t.name.ends_with("mlp.proj.weight");
    const double std = residual ? residual_std : 0.02;
    for (size_t i = 0; i < t.count; ++i) p[i] = static_cast<Real>(std * rng.normal());
  }
}

template <typename Real>
void Gpt<Real>::zero_grads() {
  std::memset(grads_.data(), 0, grads_.size() * sizeof(Real));
}

template <typename Real>
void Gpt<Real>::set_remat_plan(const RematPlan& plan) {
  if (plan.layers() != config_.layers)
    fail("internal: a plan for {} blocks on a {}-block model", plan.layers(), config_.layers);
  plan_ = plan;
  plan_.normalize();
}

template <typename Real>
void Gpt<Real>::compute_unit(int l, Act kind) {
  const int B = B_, T = T_, C = config_.d_model, NH = config_.heads, V = config_.vocab;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  const int M = static_cast<int>(BT);
  Real* out = arena_.template acquire<Real>(l, static_cast<int>(kind), unit_elements(config_, B, T, kind));
  if (kind == Act::kEmbed) {
    encoder_forward(out, inputs_.data(), w_.wte, w_.wpe, B, T, C);
    return;
  }
  if (l < 0) {
    switch (kind) {
      case Act::kLnf:
        layernorm_forward(out, out + BTC, out + BTC + BT, unit(config_.layers - 1, Act::kBlockOut), w_.lnf_w,
                          w_.lnf_b, M, C);
        return;
      case Act::kLogits:
        lm_head_logits(out, unit(-1, Act::kLnf), w_.wte, M, C, V);
        return;
      case Act::kLoss: {
        // Without kept logits the loss computes them slice by slice: that time is the logits' cost.
        double seconds = lm_head_loss(out, out + BT, unit(-1, Act::kLogits), unit(-1, Act::kLogitsSlice),
                                      unit(-1, Act::kLnf), w_.wte, targets_.data(), M, C, V);
        if (seconds > 0) unit_seconds_[0][static_cast<size_t>(Act::kLogits)] = seconds;
        return;
      }
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
      linear_forward(out, unit(l, Act::kLn1), w.qkv_w, w.qkv_b, M, C, 3 * C);
      return;
    case Act::kAttProbs:
      triad::attention_probs(out, unit(l, Act::kQkv), B, T, C, NH);
      return;
    case Act::kAttOut:
      attention_values(out, unit(l, Act::kAttProbs), unit(l, Act::kQkv), B, T, C, NH);
      return;
    case Act::kRes2:
      linear_forward(out, unit(l, Act::kAttOut), w.proj_w, w.proj_b, M, C, C);
      accumulate(out, block_input(l), BTC);
      return;
    case Act::kLn2:
      layernorm_forward(out, out + BTC, out + BTC + BT, unit(l, Act::kRes2), w.ln2_w, w.ln2_b, M, C);
      return;
    case Act::kFc:
      linear_forward(out, unit(l, Act::kLn2), w.fc_w, w.fc_b, M, C, 4 * C);
      return;
    case Act::kGelu:
      gelu_forward(out, unit(l, Act::kFc), 4 * BTC);
      return;
    case Act::kBlockOut:
      linear_forward(out, unit(l, Act::kGelu), w.fcproj_w, w.fcproj_b, M, 4 * C, C);
      accumulate(out, unit(l, Act::kRes2), BTC);
      return;
    default:
      fail("internal: cannot compute {}", act_name(kind));
  }
}

template <typename Real>
double Gpt<Real>::forward(const int32_t* inputs, const int32_t* targets, int B, int T, Pass pass) {
  if (T > config_.seq_len) fail_usage("sequence length {} exceeds the model's {}", T, config_.seq_len);
  const int V = config_.vocab;
  const size_t BT = static_cast<size_t>(B) * T;
  release_activations();
  B_ = B;
  T_ = T;
  inputs_.assign(inputs, inputs + BT);
  for (int32_t t : inputs_) {
    if (t < 0 || t >= V) fail("token id {} is outside the model's vocabulary of {}", t, V);
  }
  if (targets) {
    targets_.assign(targets, targets + BT);
    for (int32_t t : targets_) {
      if (t < 0 || t >= V) fail("target id {} is outside the model's vocabulary of {}", t, V);
    }
  }
  schedule_ = std::make_unique<StepSchedule>(pass == Pass::kTrain ? plan_ : inference_plan_, config_.layers);
  Events events(*this);
  schedule_->forward(events, targets != nullptr);
  if (!targets) return 0.0;
  const Real* loss = unit(-1, Act::kLoss);
  double sum = 0;
  for (size_t i = 0; i < BT; ++i) sum += loss[i];
  return sum / static_cast<double>(BT);
}

template <typename Real>
void Gpt<Real>::backward(Real loss_scale, const BlockDone& on_block_done) {
  if (!schedule_ || !arena_.live(-1, static_cast<int>(Act::kLoss)))
    fail("internal: backward without a training forward on targets");
  loss_scale_ = loss_scale;
  on_block_done_ = on_block_done;
  recompute_seconds_ = 0;
  Events events(*this);
  schedule_->backward(events);
  schedule_.reset();
  on_block_done_ = nullptr;
}

template <typename Real>
void Gpt<Real>::head_backward() {
  const int C = config_.d_model, V = config_.vocab, L = config_.layers;
  const size_t BT = static_cast<size_t>(B_) * T_, BTC = BT * C;
  const int M = static_cast<int>(BT);
  Real* scratch = unit(-1, Act::kScratch);
  Real *dC = scratch, *dres = scratch + 9 * BTC;
  // Through the LM head (tied embedding) — recomputing logit slices if they were not kept — and the final
  // LayerNorm.
  Real* lnf = unit(-1, Act::kLnf);
  std::memset(dC, 0, BTC * sizeof(Real));
  recompute_seconds_ +=
      lm_head_backward(dC, g_.wte, unit(-1, Act::kLogits), unit(-1, Act::kLogitsSlice), lnf, w_.wte,
                       targets_.data(), unit(-1, Act::kLoss) + BT, loss_scale_, M, C, V);
  std::memset(dres, 0, BTC * sizeof(Real));
  layernorm_backward(dres, g_.lnf_w, g_.lnf_b, dC, unit(L - 1, Act::kBlockOut), w_.lnf_w, lnf + BTC,
                     lnf + BTC + BT, M, C);
  if (on_block_done_) on_block_done_(L + 1);
}

template <typename Real>
void Gpt<Real>::block_backward(int l) {
  const int B = B_, T = T_, C = config_.d_model, NH = config_.heads;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  const int M = static_cast<int>(BT);
  const BlockTensors<Real>& w = w_.blocks[l];
  const BlockTensors<Real>& g = g_.blocks[l];
  Real* scratch = unit(-1, Act::kScratch);
  Real *dC = scratch, *d4a = scratch + BTC, *d4b = d4a + 4 * BTC, *dres = scratch + 9 * BTC;
  Real *ln1 = unit(l, Act::kLn1), *qkv = unit(l, Act::kQkv), *att = unit(l, Act::kAttProbs);
  Real *atty = unit(l, Act::kAttOut), *res2 = unit(l, Act::kRes2), *ln2 = unit(l, Act::kLn2);
  Real *fc = unit(l, Act::kFc), *gelu = unit(l, Act::kGelu);
  const Real* x = block_input(l);

  // out = res2 + fcproj(gelu(fc(ln2(res2))))
  std::memset(d4a, 0, 4 * BTC * sizeof(Real));
  linear_backward(d4a, g.fcproj_w, g.fcproj_b, dres, gelu, w.fcproj_w, M, 4 * C, C);
  std::memset(d4b, 0, 4 * BTC * sizeof(Real));
  gelu_backward(d4b, fc, d4a, 4 * BTC);
  std::memset(dC, 0, BTC * sizeof(Real));
  linear_backward(dC, g.fc_w, g.fc_b, d4b, ln2, w.fc_w, M, C, 4 * C);
  layernorm_backward(dres, g.ln2_w, g.ln2_b, dC, res2, w.ln2_w, ln2 + BTC, ln2 + BTC + BT, M,
                     C);  // dres = d res2
  // res2 = x + proj(attention(qkv(ln1(x))))
  std::memset(dC, 0, BTC * sizeof(Real));
  linear_backward(dC, g.proj_w, g.proj_b, dres, atty, w.proj_w, M, C, C);
  Real* dqkv = d4a;
  std::memset(dqkv, 0, 3 * BTC * sizeof(Real));
  attention_backward(dqkv, dC, qkv, att, B, T, C, NH);
  std::memset(dC, 0, BTC * sizeof(Real));
  linear_backward(dC, g.qkv_w, g.qkv_b, dqkv, ln1, w.qkv_w, M, C, 3 * C);
  layernorm_backward(dres, g.ln1_w, g.ln1_b, dC, x, w.ln1_w, ln1 + BTC, ln1 + BTC + BT, M, C);  // dres = d x
  if (on_block_done_) on_block_done_(l + 1);
}

template <typename Real>
void Gpt<Real>::embed_backward() {
  const size_t BTC = static_cast<size_t>(B_) * T_ * config_.d_model;
  encoder_backward(g_.wte, g_.wpe, unit(-1, Act::kScratch) + 9 * BTC, inputs_.data(), B_, T_,
                   config_.d_model);
  if (on_block_done_) on_block_done_(0);
}

template <typename Real>
void Gpt<Real>::release_activations() {
  for (const UnitStats& u : arena_.units()) arena_.release(u.block, u.kind);
  schedule_.reset();
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
