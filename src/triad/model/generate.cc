#include "triad/model/generate.h"

#include <algorithm>
#include <cmath>

#include "triad/core/error.h"
#include "triad/kernels/attention.h"
#include "triad/kernels/gelu.h"
#include "triad/kernels/layernorm.h"
#include "triad/kernels/linear.h"

namespace triad {

DecodeState::DecodeState(const GptConfig& c) : seq_len_(c.seq_len) {
  const size_t C = static_cast<size_t>(c.d_model), A = static_cast<size_t>(c.attention_width());
  k_cache_.resize(static_cast<size_t>(c.layers) * c.seq_len * A);
  v_cache_.resize(k_cache_.size());
  x_.resize(C);
  ln_.resize(C + 2);
  qkv_.resize(3 * A);
  y_.resize(A);
  tmp_.resize(C);
  fc_.resize(static_cast<size_t>(c.mlp()));
  gelu_.resize(static_cast<size_t>(c.mlp()));
  scores_.resize(static_cast<size_t>(c.seq_len));
  logits_.resize(static_cast<size_t>(c.vocab));
}

int DecodeState::next_position() {
  if (pos_ >= seq_len_) fail("the context is full: the model was trained on at most {} positions", seq_len_);
  return pos_++;
}

KvDecoder::KvDecoder(const Gpt<float>& model)
    : DecodeState(model.config()), model_(model), w_(tensor_views(model.layout(), model.params())) {}

const std::vector<float>& KvDecoder::step(int32_t token) {
  const GptConfig& c = model_.config();
  const int C = c.d_model, NH = c.heads, T = c.seq_len, F = c.mlp(), A = c.attention_width();
  if (token < 0 || token >= c.vocab) fail("token id {} is outside the vocabulary of {}", token, c.vocab);
  const int t = next_position();
  for (int i = 0; i < C; ++i)
    x_[i] = w_.wte[static_cast<size_t>(token) * C + i] + w_.wpe[static_cast<size_t>(t) * C + i];
  for (int l = 0; l < c.layers; ++l) {
    const BlockTensors<const float>& w = w_.blocks[l];
    float* kc = k_cache_.data() + static_cast<size_t>(l) * T * A;
    float* vc = v_cache_.data() + static_cast<size_t>(l) * T * A;
    layernorm_forward(ln_.data(), ln_.data() + C, ln_.data() + C + 1, x_.data(), w.ln1_w, w.ln1_b, 1, C);
    linear_forward(qkv_.data(), ln_.data(), w.qkv_w, w.qkv_b, 1, C, 3 * A);
    std::copy(qkv_.begin() + A, qkv_.begin() + 2 * A, kc + static_cast<size_t>(t) * A);
    std::copy(qkv_.begin() + 2 * A, qkv_.end(), vc + static_cast<size_t>(t) * A);
    attention_decode_step(y_.data(), qkv_.data(), kc, vc, t, A, NH, scores_.data());
    linear_forward(tmp_.data(), y_.data(), w.proj_w, w.proj_b, 1, A, C);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
    layernorm_forward(ln_.data(), ln_.data() + C, ln_.data() + C + 1, x_.data(), w.ln2_w, w.ln2_b, 1, C);
    linear_forward(fc_.data(), ln_.data(), w.fc_w, w.fc_b, 1, C, F);
    gelu_forward(gelu_.data(), fc_.data(), fc_.size());
    linear_forward(tmp_.data(), gelu_.data(), w.fcproj_w, w.fcproj_b, 1, F, C);
    for (int i = 0; i < C; ++i) x_[i] += tmp_[i];
  }
  layernorm_forward(ln_.data(), ln_.data() + C, ln_.data() + C + 1, x_.data(), w_.lnf_w, w_.lnf_b, 1, C);
  linear_forward(logits_.data(), ln_.data(), w_.wte, static_cast<const float*>(nullptr), 1, C, c.vocab);
  return logits_;
}

int32_t sample_token(const std::vector<float>& logits, const SampleOptions& o, Rng& rng) {
  const int V = static_cast<int>(logits.size());
  if (o.temperature <= 0)
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  std::vector<int32_t> ids(static_cast<size_t>(V));
  for (int i = 0; i < V; ++i) ids[i] = i;
  const int k = o.top_k > 0 ? std::min(o.top_k, V) : V;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  std::vector<double> p(static_cast<size_t>(k));
  double sum = 0;
  for (int i = 0; i < k; ++i) sum += p[i] = std::exp((logits[ids[i]] - logits[ids[0]]) / o.temperature);
  double u = rng.uniform() * sum;
  for (int i = 0; i < k; ++i) {
    if ((u -= p[i]) <= 0) return ids[i];
  }
  return ids[k - 1];
}

std::vector<int32_t> generate(const Gpt<float>& model, const std::vector<int32_t>& prompt,
                              const SampleOptions& o, int32_t eos_id) {
  if (prompt.empty()) fail_usage("the prompt must hold at least one token");
  const int room = model.config().seq_len - static_cast<int>(prompt.size());
  if (room <= 0) {
    fail_usage("the prompt has {} tokens; the model's context is {}", prompt.size(), model.config().seq_len);
  }
  KvDecoder decoder(model);
  Rng rng(o.seed);
  const std::vector<float>* logits = nullptr;
  for (int32_t t : prompt) logits = &decoder.step(t);
  std::vector<int32_t> out;
  for (int i = 0; i < std::min(o.max_tokens, room); ++i) {
    int32_t next = sample_token(*logits, o, rng);
    if (next == eos_id) break;
    out.push_back(next);
    if (i + 1 < std::min(o.max_tokens, room)) logits = &decoder.step(next);
  }
  return out;
}

}  // namespace triad
