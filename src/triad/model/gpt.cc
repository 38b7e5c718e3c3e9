#include "triad/model/gpt.h"

#include <cmath>
#include <cstring>

#include "triad/core/error.h"
#include "triad/core/rng.h"
#include "triad/kernels/attention.h"
#include "triad/kernels/crossentropy.h"
#include "triad/kernels/encoder.h"
#include "triad/kernels/gelu.h"
#include "triad/kernels/layernorm.h"
#include "triad/kernels/linear.h"
#include "triad/kernels/residual.h"

namespace triad {

template <typename Real>
Gpt<Real>::Gpt(const GptConfig& config)
    : config_(config), layout_(config), params_(layout_.count()), grads_(layout_.count()) {
  config.validate();
  w_ = tensor_views(layout_, params_.data());
  g_ = tensor_views(layout_, grads_.data());
}

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
const Real* Gpt<Real>::block_input(int l) const {
  return l == 0 ? unit(-1, Act::kEmbed) : unit(l - 1, Act::kBlockOut);
}

template <typename Real>
void Gpt<Real>::block_forward(int l) {
  const int B = B_, T = T_, C = config_.d_model, NH = config_.heads;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  const BlockTensors<Real>& w = w_.blocks[l];
  const Real* x = block_input(l);

  Real* ln1 = arena_.template acquire<Real>(l, Act::kLn1, BTC + 2 * BT);
  layernorm_forward(ln1, ln1 + BTC, ln1 + BTC + BT, x, w.ln1_w, w.ln1_b, static_cast<int>(BT), C);
  Real* qkv = arena_.template acquire<Real>(l, Act::kQkv, 3 * BTC);
  linear_forward(qkv, ln1, w.qkv_w, w.qkv_b, static_cast<int>(BT), C, 3 * C);
  Real* att = arena_.template acquire<Real>(l, Act::kAttProbs, static_cast<size_t>(B) * NH * T * T);
  Real* atty = arena_.template acquire<Real>(l, Act::kAttOut, BTC);
  attention_forward(atty, att, qkv, B, T, C, NH);
  Real* res2 = arena_.template acquire<Real>(l, Act::kRes2, BTC);
  linear_forward(res2, atty, w.proj_w, w.proj_b, static_cast<int>(BT), C, C);
  accumulate(res2, x, BTC);
  Real* ln2 = arena_.template acquire<Real>(l, Act::kLn2, BTC + 2 * BT);
  layernorm_forward(ln2, ln2 + BTC, ln2 + BTC + BT, res2, w.ln2_w, w.ln2_b, static_cast<int>(BT), C);
  Real* fc = arena_.template acquire<Real>(l, Act::kFc, 4 * BTC);
  linear_forward(fc, ln2, w.fc_w, w.fc_b, static_cast<int>(BT), C, 4 * C);
  Real* gelu = arena_.template acquire<Real>(l, Act::kGelu, 4 * BTC);
  gelu_forward(gelu, fc, 4 * BTC);
  Real* out = arena_.template acquire<Real>(l, Act::kBlockOut, BTC);
  linear_forward(out, gelu, w.fcproj_w, w.fcproj_b, static_cast<int>(BT), 4 * C, C);
  accumulate(out, res2, BTC);
}

template <typename Real>
double Gpt<Real>::forward(const int32_t* inputs, const int32_t* targets, int B, int T) {
  if (T > config_.seq_len) fail_usage("sequence length {} exceeds the model's {}", T, config_.seq_len);
  const int C = config_.d_model, V = config_.vocab;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  B_ = B;
  T_ = T;
  inputs_.assign(inputs, inputs + BT);
  for (int32_t t : inputs_) {
    if (t < 0 || t >= V) fail("token id {} is outside the model's vocabulary of {}", t, V);
  }
  if (targets) targets_.assign(targets, targets + BT);

  Real* embed = arena_.template acquire<Real>(-1, Act::kEmbed, BTC);
  encoder_forward(embed, inputs_.data(), w_.wte, w_.wpe, B, T, C);
  for (int l = 0; l < config_.layers; ++l) block_forward(l);
  Real* lnf = arena_.template acquire<Real>(-1, Act::kLnf, BTC + 2 * BT);
  layernorm_forward(lnf, lnf + BTC, lnf + BTC + BT, unit(config_.layers - 1, Act::kBlockOut), w_.lnf_w,
                    w_.lnf_b, static_cast<int>(BT), C);
  Real* logits = arena_.template acquire<Real>(-1, Act::kLogits, BT * V);
  linear_forward(logits, lnf, w_.wte, static_cast<const Real*>(nullptr), static_cast<int>(BT), C, V);
  if (!targets) return 0.0;
  for (int32_t t : targets_) {
    if (t < 0 || t >= V) fail("target id {} is outside the model's vocabulary of {}", t, V);
  }
  Real* loss = arena_.template acquire<Real>(-1, Act::kLoss, 2 * BT);
  crossentropy_forward(loss, loss + BT, logits, targets_.data(), static_cast<int>(BT), V);
  double sum = 0;
  for (size_t i = 0; i < BT; ++i) sum += loss[i];
  return sum / static_cast<double>(BT);
}

template <typename Real>
void Gpt<Real>::block_backward(int l, Real* dres) {
  const int B = B_, T = T_, C = config_.d_model, NH = config_.heads;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  const int M = static_cast<int>(BT);
  const BlockTensors<Real>& w = w_.blocks[l];
  const BlockTensors<Real>& g = g_.blocks[l];
  Real* scratch = unit(-1, Act::kScratch);  // [dC | d4C_a | d4C_b]
  Real *dC = scratch, *d4a = scratch + BTC, *d4b = d4a + 4 * BTC;
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
}

template <typename Real>
void Gpt<Real>::backward(Real loss_scale, const BlockDone& on_block_done) {
  if (!arena_.live(-1, Act::kLoss)) fail("internal: backward without a forward on targets");
  const int B = B_, T = T_, C = config_.d_model, V = config_.vocab, L = config_.layers;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  const int M = static_cast<int>(BT);
  auto done = [&](int block) {
    if (on_block_done) on_block_done(block);
  };
  Real* scratch = arena_.template acquire<Real>(-1, Act::kScratch, 10 * BTC);  // [dC | d4C_a | d4C_b | dres]
  Real *dC = scratch, *dres = scratch + 9 * BTC;

  // LM head: dlogits in place of the logits, then through the tied embedding and the final LayerNorm.
  Real* logits = unit(-1, Act::kLogits);
  Real* loss = unit(-1, Act::kLoss);
  crossentropy_backward(logits, logits, loss + BT, targets_.data(), loss_scale, M, V);
  arena_.release(-1, Act::kLoss);
  Real* lnf = unit(-1, Act::kLnf);
  std::memset(dC, 0, BTC * sizeof(Real));
  linear_backward(dC, g_.wte, static_cast<Real*>(nullptr), logits, lnf, w_.wte, M, C, V);
  arena_.release(-1, Act::kLogits);
  std::memset(dres, 0, BTC * sizeof(Real));
  layernorm_backward(dres, g_.lnf_w, g_.lnf_b, dC, unit(L - 1, Act::kBlockOut), w_.lnf_w, lnf + BTC,
                     lnf + BTC + BT, M, C);
  arena_.release(-1, Act::kLnf);
  done(L + 1);

  for (int l = L - 1; l >= 0; --l) {
    block_backward(l, dres);
    for (Act kind : {Act::kLn1, Act::kQkv, Act::kAttProbs, Act::kAttOut, Act::kRes2, Act::kLn2, Act::kFc,
                     Act::kGelu, Act::kBlockOut}) {
      arena_.release(l, kind);
    }
    done(l + 1);
  }
  encoder_backward(g_.wte, g_.wpe, dres, inputs_.data(), B, T, C);
  arena_.release(-1, Act::kEmbed);
  arena_.release(-1, Act::kScratch);
  done(0);
}

template <typename Real>
void Gpt<Real>::release_activations() {
  for (const UnitStats& u : arena_.units()) arena_.release(u.block, u.kind);
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
