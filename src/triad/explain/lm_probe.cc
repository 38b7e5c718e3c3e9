// The language model's probe (probe.h): the trunk's blocks run from embeddings; the final LayerNorm and the
// tied head are applied here, at each sequence's last position only, so the score and its gradient are
// those of the one token explained:
//
//   h = LN_f(x_last)     logits = wte · h (V)     z = logits[target] − log Σ_v exp(logits[v])
//   dz/dlogits = onehot(target) − softmax(logits)     dz/dh = wteᵀ · dz/dlogits     dz/dx_last by LN_f's
//   backward

#include <cmath>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/safetensors.h"
#include "triad/explain/probe.h"
#include "triad/kernels/gemm.h"
#include "triad/kernels/layernorm.h"
#include "triad/train/checkpoint.h"
#include "triad/train/tokenizer_agreement.h"

namespace triad::explain {

namespace {

ModelShard blocks_only(const GptConfig& config) {
  return {.blocks = config.layers, .embedding = false, .head = false};
}

class LanguageModelProbe : public Probe {
 public:
  LanguageModelProbe(const std::string& dir, const CheckpointManifest& manifest, int batch)
      : Probe(manifest.model, std::filesystem::path(dir).parent_path().parent_path().string(), batch),
        tokenizer_(load_checkpoint_tokenizer(dir, manifest.json, manifest.model.vocab)),
        trunk_(manifest.model, blocks_only(manifest.model)) {
    load_checkpoint_weights(dir, &trunk_);
    const std::string weights = (std::filesystem::path(dir) / "model.safetensors").string();
    load_embeddings(weights);
    const SafetensorsFile file(weights);
    const int C = config_.d_model;
    const SafeTensor& w = file.get("ln_f.weight", {C});
    const SafeTensor& b = file.get("ln_f.bias", {C});
    lnf_w_.assign(w.data, w.data + C);
    lnf_b_.assign(b.data, b.data + C);
  }

  const char* kind() const override { return "language model"; }
  const Tokenizer& tokenizer() const override { return tokenizer_; }
  int seq_len() const override { return config_.seq_len; }

  Outcome fix_outcome(const std::vector<int32_t>& tokens) override {
    target_ = -1;  // scores are then the whole next-token distribution's log-probabilities
    logits({tokens});
    const int V = config_.vocab;
    int best = 0;
    for (int v = 1; v < V; ++v) {
      if (probs_[v] > probs_[best]) best = v;
    }
    target_ = best;
    return {1, probs_[best], fmt::format("next token \"{}\"", tokenizer_.decode({best}))};
  }
  double probability(double z, int) const override { return std::exp(z); }
  std::vector<int> read_positions(int T) const override { return {T - 1}; }

 protected:
  Gpt<float>& trunk() override { return trunk_; }

  std::vector<double> forward(const int32_t* tokens, const int* lengths, int B, int T, bool train) override {
    trunk_.forward(tokens, nullptr, B, T, train ? Gpt<float>::Pass::kTrain : Gpt<float>::Pass::kInference,
                   embedded());
    const int C = config_.d_model, V = config_.vocab;
    const float* out = trunk_.stage_output();  // (B, T, C)
    last_.assign(static_cast<size_t>(B) * C, 0.0f);
    for (int b = 0; b < B; ++b) {
      std::copy_n(out + (static_cast<size_t>(b) * T + lengths[b] - 1) * C, C, last_.begin() + b * C);
    }
    lengths_.assign(lengths, lengths + B);
    hidden_.resize(last_.size());
    mean_.resize(B);
    rstd_.resize(B);
    layernorm_forward(hidden_.data(), mean_.data(), rstd_.data(), last_.data(), lnf_w_.data(), lnf_b_.data(),
                      B, C);
    probs_.resize(static_cast<size_t>(B) * V);
    gemm<float>(false, true, B, V, C, 1, hidden_.data(), C, wte().data(), C, 0, probs_.data(), V);
    std::vector<double> z(B);
    for (int b = 0; b < B; ++b) {  // softmax in place; z = log p(target)
      float* p = probs_.data() + static_cast<size_t>(b) * V;
      const float max = *std::max_element(p, p + V);
      double sum = 0;
      for (int v = 0; v < V; ++v) sum += std::exp(static_cast<double>(p[v]) - max);
      const double lse = max + std::log(sum);
      if (target_ >= 0) z[b] = p[target_] - lse;
      for (int v = 0; v < V; ++v) p[v] = static_cast<float>(std::exp(p[v] - lse));
    }
    return z;
  }

  void backward(int B, int T, float* input_grad) override {
    if (target_ < 0) fail("internal: a language model's gradient before its outcome is fixed");
    const int C = config_.d_model, V = config_.vocab;
    std::vector<float> dlogits(static_cast<size_t>(B) * V), dh(static_cast<size_t>(B) * C, 0.0f);
    for (int b = 0; b < B; ++b) {
      for (int v = 0; v < V; ++v) dlogits[b * V + v] = (v == target_ ? 1.0f : 0.0f) - probs_[b * V + v];
    }
    gemm<float>(false, false, B, C, V, 1, dlogits.data(), V, wte().data(), C, 0, dh.data(), C);
    std::vector<float> dlast(static_cast<size_t>(B) * C, 0.0f), dw(C, 0.0f), db(C, 0.0f);
    layernorm_backward(dlast.data(), dw.data(), db.data(), dh.data(), last_.data(), lnf_w_.data(),
                       mean_.data(), rstd_.data(), B, C);
    std::vector<float> output_grad(static_cast<size_t>(B) * T * C, 0.0f);
    for (int b = 0; b < B; ++b) {
      std::copy_n(dlast.begin() + b * C, C,
                  output_grad.begin() + (static_cast<size_t>(b) * T + lengths_[b] - 1) * C);
    }
    trunk_.zero_grads();
    trunk_.backward(1.0f, nullptr, output_grad.data());
    std::copy_n(trunk_.stage_input_grad(), static_cast<size_t>(B) * T * C, input_grad);
  }

 private:
  Tokenizer tokenizer_;
  Gpt<float> trunk_;
  std::vector<float> lnf_w_, lnf_b_;
  int target_ = -1;
  // The last forward's: each row's last hidden state, after LN_f, LN_f's statistics, p(next token).
  std::vector<float> last_, hidden_, mean_, rstd_, probs_;
  std::vector<int> lengths_;
};

}  // namespace

std::unique_ptr<Probe> open_language_model(const std::string& checkpoint, int batch) {
  const std::string dir = resolve_checkpoint(checkpoint);
  const CheckpointManifest manifest = read_checkpoint_manifest(dir);
  return std::make_unique<LanguageModelProbe>(dir, manifest, batch);
}

}  // namespace triad::explain
