#include "triad/compress/int8_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "triad/core/error.h"
#include "triad/kernels/attention.h"
#include "triad/kernels/gelu.h"
#include "triad/kernels/layernorm.h"
#include "triad/kernels/lm_head.h"
#include "triad/kernels/residual.h"

namespace triad {

namespace {

using Clock = std::chrono::steady_clock;

// Seconds since *t; *t becomes now (a lap timer).
double lap_seconds(Clock::time_point* t) {
  const Clock::time_point now = Clock::now();
  const double s = std::chrono::duration<double>(now - *t).count();
  *t = now;
  return s;
}

std::vector<float> copy_of(const float* p, size_t n) {
  return std::vector<float>(p, p + n);
}

}  // namespace

Int8Gpt::Int8Gpt(const Gpt<float>& model)
    : config_(model.config()),
      head_(tensor_views(model.layout(), model.params()).wte, model.config().vocab, model.config().d_model) {
  if (!model.shard().is_whole(config_)) fail_usage("int8 inference needs the whole model on one process");
  const GptTensors<const float> w = tensor_views(model.layout(), model.params());
  const size_t C = static_cast<size_t>(config_.d_model);
  wpe_ = copy_of(w.wpe, static_cast<size_t>(config_.seq_len) * C);
  lnf_w_ = copy_of(w.lnf_w, C);
  lnf_b_ = copy_of(w.lnf_b, C);
  for (const BlockTensors<const float>& b : w.blocks) {
    const int c = config_.d_model, f = config_.mlp(), a = config_.attention_width();
    layers_.push_back(Layer{.ln1_w = copy_of(b.ln1_w, C),
                            .ln1_b = copy_of(b.ln1_b, C),
                            .qkv_b = copy_of(b.qkv_b, 3 * static_cast<size_t>(a)),
                            .proj_b = copy_of(b.proj_b, C),
                            .ln2_w = copy_of(b.ln2_w, C),
                            .ln2_b = copy_of(b.ln2_b, C),
                            .fc_b = copy_of(b.fc_b, static_cast<size_t>(f)),
                            .fcproj_b = copy_of(b.fcproj_b, C),
                            .qkv = Int8Linear(b.qkv_w, 3 * a, c),
                            .proj = Int8Linear(b.proj_w, c, a),
                            .fc = Int8Linear(b.fc_w, f, c),
                            .fcproj = Int8Linear(b.fcproj_w, c, f)});
  }
}

size_t Int8Gpt::weight_bytes() const {
  size_t floats = wpe_.size() + lnf_w_.size() + lnf_b_.size(), bytes = head_.bytes();
  for (const Layer& l : layers_) {
    floats += l.ln1_w.size() + l.ln1_b.size() + l.qkv_b.size() + l.proj_b.size() + l.ln2_w.size() +
              l.ln2_b.size() + l.fc_b.size() + l.fcproj_b.size();
    bytes += l.qkv.bytes() + l.proj.bytes() + l.fc.bytes() + l.fcproj.bytes();
  }
  return bytes + floats * sizeof(float);
}

void Int8Gpt::embed(float* out, int32_t token, int position) const {
  const int C = config_.d_model;
  if (token < 0 || token >= config_.vocab)
    fail("token id {} is outside the model's vocabulary of {}", token, config_.vocab);
  head_.dequantize_row(token, out);
  const float* p = wpe_.data() + static_cast<size_t>(position) * C;
  for (int c = 0; c < C; ++c) out[c] += p[c];
}

double Int8Gpt::loss(const int32_t* inputs, const int32_t* targets, int B, int T) {
  if (T > config_.seq_len) fail_usage("sequence length {} exceeds the model's {}", T, config_.seq_len);
  const int C = config_.d_model, NH = config_.heads, V = config_.vocab, M = B * T;
  const int A = config_.attention_width();
  const size_t MC = static_cast<size_t>(M) * C, MA = static_cast<size_t>(M) * A;
  x_.resize(MC);
  ln_.resize(MC + 2 * static_cast<size_t>(M));
  qkv_.resize(3 * MA);
  att_.resize(static_cast<size_t>(B) * NH * T * T);
  y_.resize(MA);
  tmp_.resize(MC);
  fc_.resize(static_cast<size_t>(M) * config_.mlp());
  gelu_.resize(fc_.size());
  logits_.resize(static_cast<size_t>(M) * V);
  losses_.resize(2 * static_cast<size_t>(M));
  Clock::time_point t = Clock::now();
  for (int m = 0; m < M; ++m) embed(x_.data() + static_cast<size_t>(m) * C, inputs[m], m % T);
  float *ln = ln_.data(), *mean = ln + MC, *rstd = mean + M;
  Seconds& s = seconds_;
  for (Layer& l : layers_) {
    layernorm_forward(ln, mean, rstd, x_.data(), l.ln1_w.data(), l.ln1_b.data(), M, C);
    s.rest += lap_seconds(&t);
    l.qkv.forward(qkv_.data(), ln, l.qkv_b.data(), M);
    s.block_linears += lap_seconds(&t);
    attention_forward(y_.data(), att_.data(), qkv_.data(), B, T, A, NH);
    s.rest += lap_seconds(&t);
    l.proj.forward(tmp_.data(), y_.data(), l.proj_b.data(), M);
    s.block_linears += lap_seconds(&t);
    accumulate(x_.data(), tmp_.data(), MC);
    layernorm_forward(ln, mean, rstd, x_.data(), l.ln2_w.data(), l.ln2_b.data(), M, C);
    s.rest += lap_seconds(&t);
    l.fc.forward(fc_.data(), ln, l.fc_b.data(), M);
    s.block_linears += lap_seconds(&t);
    gelu_forward(gelu_.data(), fc_.data(), fc_.size());
    s.rest += lap_seconds(&t);
    l.fcproj.forward(tmp_.data(), gelu_.data(), l.fcproj_b.data(), M);
    s.block_linears += lap_seconds(&t);
    accumulate(x_.data(), tmp_.data(), MC);
  }
  layernorm_forward(ln, mean, rstd, x_.data(), lnf_w_.data(), lnf_b_.data(), M, C);
  s.rest += lap_seconds(&t);
  head_.forward(logits_.data(), ln, nullptr, M);
  s.head += lap_seconds(&t);
  for (int m = 0; m < M; ++m) {
    if (targets[m] < 0 || targets[m] >= V)
      fail("target id {} is outside the model's vocabulary of {}", targets[m], V);
  }
  float *losses = losses_.data(), *lse = losses + M;
  std::fill(losses, losses + M, 0.0f);
  lm_head_loss<float>(losses, lse, logits_.data(), nullptr, ln, nullptr, targets, M, C, V);
  s.loss += lap_seconds(&t);
  double sum = 0;
  for (int m = 0; m < M; ++m) sum += losses[m];
  return sum / M;
}

// The steps of KvDecoder::step, with the int8 layers.
const std::vector<float>& Int8Decoder::step(int32_t token) {
  const GptConfig& c = m_.config();
  const int C = c.d_model, NH = c.heads, T = c.seq_len, A = c.attention_width();
  const int t = next_position();
  m_.embed(x_.data(), token, t);
  float *ln = ln_.data(), *mean = ln + C, *rstd = mean + 1;
  for (int li = 0; li < c.layers; ++li) {
    Int8Gpt::Layer& l = m_.layers_[static_cast<size_t>(li)];
    float* kc = k_cache_.data() + static_cast<size_t>(li) * T * A;
    float* vc = v_cache_.data() + static_cast<size_t>(li) * T * A;
    layernorm_forward(ln, mean, rstd, x_.data(), l.ln1_w.data(), l.ln1_b.data(), 1, C);
    l.qkv.forward(qkv_.data(), ln, l.qkv_b.data(), 1);
    std::copy(qkv_.begin() + A, qkv_.begin() + 2 * A, kc + static_cast<size_t>(t) * A);
    std::copy(qkv_.begin() + 2 * A, qkv_.end(), vc + static_cast<size_t>(t) * A);
    attention_decode_step(y_.data(), qkv_.data(), kc, vc, t, A, NH, scores_.data());
    l.proj.forward(tmp_.data(), y_.data(), l.proj_b.data(), 1);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
    layernorm_forward(ln, mean, rstd, x_.data(), l.ln2_w.data(), l.ln2_b.data(), 1, C);
    l.fc.forward(fc_.data(), ln, l.fc_b.data(), 1);
    gelu_forward(gelu_.data(), fc_.data(), fc_.size());
    l.fcproj.forward(tmp_.data(), gelu_.data(), l.fcproj_b.data(), 1);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
  }
  layernorm_forward(ln, mean, rstd, x_.data(), m_.lnf_w_.data(), m_.lnf_b_.data(), 1, C);
  m_.head_.forward(logits_.data(), ln, nullptr, 1);
  return logits_;
}

std::vector<int32_t> int8_generate(Int8Gpt& model, const std::vector<int32_t>& prompt, const SampleOptions& o,
                                   int32_t eos_id) {
  if (prompt.empty()) fail_usage("the prompt must hold at least one token");
  const int room = model.config().seq_len - static_cast<int>(prompt.size());
  if (room <= 0) {
    fail_usage("the prompt has {} tokens; the model's context is {}", prompt.size(), model.config().seq_len);
  }
  Int8Decoder decoder(model);
  Rng rng(o.seed);
  const std::vector<float>* logits = nullptr;
  for (int32_t t : prompt) logits = &decoder.step(t);
  std::vector<int32_t> out;
  const int n = std::min(o.max_tokens, room);
  for (int i = 0; i < n; ++i) {
    int32_t next = sample_token(*logits, o, rng);
    if (next == eos_id) break;
    out.push_back(next);
    if (i + 1 < n) logits = &decoder.step(next);
  }
  return out;
}

}  // namespace triad
