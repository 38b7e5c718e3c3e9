#include "triad/fairness/classifier.h"

#include <cstring>

#include "triad/core/error.h"
#include "triad/core/rng.h"
#include "triad/kernels/layernorm.h"

namespace triad::fairness {

Pooling parse_pooling(const std::string& name) {
  if (name == "mean") return Pooling::kMean;
  if (name == "last") return Pooling::kLast;
  fail_usage("--pool must be mean or last, not '{}'", name);
}

const char* pooling_name(Pooling pooling) {
  return pooling == Pooling::kMean ? "mean" : "last";
}

std::vector<HeadLayout::Tensor> HeadLayout::tensors() const {
  const size_t c = static_cast<size_t>(C);
  return {{"ln_f.weight", ln_w(), c, {C}},
          {"ln_f.bias", ln_b(), c, {C}},
          {"cls.weight", w(), c, {1, C}},
          {"cls.bias", b(), 1, {1}}};
}

ModelShard trunk_shard(const GptConfig& config, bool embedding) {
  return {.first_block = 0, .blocks = config.layers, .embedding = embedding, .head = false};
}

template <typename Real>
Classifier<Real>::Classifier(const GptConfig& config, Pooling pooling, bool embedding)
    : trunk_(config, trunk_shard(config, embedding)),
      head_layout_(config.d_model),
      pooling_(pooling),
      head_params_(head_layout_.count()),
      head_grads_(head_layout_.count()) {}

template <typename Real>
void Classifier<Real>::init_head(uint64_t seed) {
  const int C = head_layout_.C;
  Rng rng(seed);
  std::fill(head_params_.begin(), head_params_.end(), Real(0));
  std::fill_n(head_params_.begin() + head_layout_.ln_w(), C, Real(1));
  for (int c = 0; c < C; ++c) head_params_[head_layout_.w() + c] = static_cast<Real>(0.02 * rng.normal());
}

template <typename Real>
void Classifier<Real>::zero_grads() {
  trunk_.zero_grads();
  std::fill(head_grads_.begin(), head_grads_.end(), Real(0));
}

template <typename Real>
const std::vector<Real>& Classifier<Real>::forward(const int32_t* tokens, const int* lengths, int B, int T,
                                                   typename Gpt<Real>::Pass pass, const Real* embedded) {
  const int C = head_layout_.C;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  for (int i = 0; i < B; ++i) {
    if (lengths[i] < 1 || lengths[i] > T) fail("internal: sequence length {} outside [1, {}]", lengths[i], T);
  }
  B_ = B;
  T_ = T;
  lengths_.assign(lengths, lengths + B);
  trunk_.forward(tokens, nullptr, B, T, pass, embedded);
  hidden_.assign(trunk_.stage_output(), trunk_.stage_output() + BTC);
  normed_.resize(BTC);
  mean_.resize(BT);
  rstd_.resize(BT);
  const Real* p = head_params_.data();
  layernorm_forward(normed_.data(), mean_.data(), rstd_.data(), hidden_.data(), p + head_layout_.ln_w(),
                    p + head_layout_.ln_b(), static_cast<int>(BT), C);
  pooled_.assign(static_cast<size_t>(B) * C, Real(0));
  logits_.resize(B);
  for (int i = 0; i < B; ++i) {
    Real* pool = pooled_.data() + static_cast<size_t>(i) * C;
    const int len = lengths[i];
    const int first = pooling_ == Pooling::kMean ? 0 : len - 1;
    for (int t = first; t < len; ++t) {
      const Real* x = normed_.data() + (static_cast<size_t>(i) * T + t) * C;
      for (int c = 0; c < C; ++c) pool[c] += x[c];
    }
    const Real scale = Real(1) / static_cast<Real>(len - first);
    Real z = p[head_layout_.b()];
    for (int c = 0; c < C; ++c) {
      pool[c] *= scale;
      z += p[head_layout_.w() + c] * pool[c];
    }
    logits_[i] = z;
  }
  return logits_;
}

template <typename Real>
void Classifier<Real>::backward(const Real* dlogits, const Real* dpooled) {
  const int B = B_, T = T_, C = head_layout_.C;
  const size_t BT = static_cast<size_t>(B) * T, BTC = BT * C;
  const Real* p = head_params_.data();
  Real* g = head_grads_.data();
  dnormed_.assign(BTC, Real(0));
  for (int i = 0; i < B; ++i) {
    const Real* pool = pooled_.data() + static_cast<size_t>(i) * C;
    const Real dz = dlogits[i];
    g[head_layout_.b()] += dz;
    const int len = lengths_[i];
    const int first = pooling_ == Pooling::kMean ? 0 : len - 1;
    const Real scale = Real(1) / static_cast<Real>(len - first);
    for (int c = 0; c < C; ++c) {
      g[head_layout_.w() + c] += dz * pool[c];
      Real dpool = dz * p[head_layout_.w() + c];
      if (dpooled) dpool += dpooled[static_cast<size_t>(i) * C + c];
      const Real d = dpool * scale;
      for (int t = first; t < len; ++t) dnormed_[(static_cast<size_t>(i) * T + t) * C + c] = d;
    }
  }
  dhidden_.assign(BTC, Real(0));
  layernorm_backward(dhidden_.data(), g + head_layout_.ln_w(), g + head_layout_.ln_b(), dnormed_.data(),
                     hidden_.data(), p + head_layout_.ln_w(), mean_.data(), rstd_.data(),
                     static_cast<int>(BT), C);
  trunk_.backward(Real(1), nullptr, dhidden_.data());
}

template class Classifier<float>;
template class Classifier<double>;

}  // namespace triad::fairness
