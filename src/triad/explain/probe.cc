#include "triad/explain/probe.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/safetensors.h"
#include "triad/fairness/classifier_run.h"
#include "triad/train/checkpoint.h"

namespace triad::explain {

void Probe::load_embeddings(const std::string& safetensors_path) {
  const SafetensorsFile file(safetensors_path);
  const SafeTensor& wte = file.get("wte.weight", {config_.vocab, config_.d_model});
  const SafeTensor& wpe = file.get("wpe.weight", {config_.seq_len, config_.d_model});
  wte_.assign(wte.data, wte.data + static_cast<size_t>(config_.vocab) * config_.d_model);
  wpe_.assign(wpe.data, wpe.data + static_cast<size_t>(config_.seq_len) * config_.d_model);
}

std::vector<float> Probe::token_embeddings(const std::vector<int32_t>& tokens) const {
  const size_t C = config_.d_model;
  std::vector<float> out(tokens.size() * C);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || id >= config_.vocab)
      fail("token id {} is outside the model's vocabulary of {}", id, config_.vocab);
    std::copy_n(wte_.begin() + static_cast<ptrdiff_t>(id * C), C,
                out.begin() + static_cast<ptrdiff_t>(t * C));
  }
  return out;
}

void Probe::embed_positions(int n, int T) {
  const size_t C = config_.d_model;
  for (int i = 0; i < n; ++i) {
    float* x = embedded_.data() + static_cast<size_t>(i) * T * C;
    for (size_t k = 0; k < static_cast<size_t>(T) * C; ++k) x[k] += wpe_[k];
  }
}

void Probe::check_length(size_t T) const {
  if (T < 1 || T > static_cast<size_t>(seq_len()))
    fail("internal: {} tokens to explain, the model reads 1 to {}", T, seq_len());
}

std::vector<double> Probe::logits(const std::vector<std::vector<int32_t>>& sequences) {
  const int limit = seq_len();
  const int32_t eos = tokenizer().eos_id();
  std::vector<double> out(sequences.size());
  std::vector<int32_t> tokens;
  std::vector<int> lengths;
  for (size_t begin = 0; begin < sequences.size(); begin += batch_) {
    const int B = static_cast<int>(std::min<size_t>(batch_, sequences.size() - begin));
    int T = 1;
    for (int i = 0; i < B; ++i) T = std::max<int>(T, std::min<size_t>(sequences[begin + i].size(), limit));
    tokens.assign(static_cast<size_t>(B) * T, eos);
    lengths.assign(B, 1);
    for (int i = 0; i < B; ++i) {
      const std::vector<int32_t>& s = sequences[begin + i];
      const int len = std::min<int>(static_cast<int>(s.size()), limit);
      std::copy_n(s.begin(), len, tokens.begin() + static_cast<ptrdiff_t>(i) * T);
      lengths[i] = std::max(len, 1);
    }
    embedded_ = token_embeddings(tokens);
    embed_positions(B, T);
    const std::vector<double> z = forward(tokens.data(), lengths.data(), B, T, /*train=*/false);
    std::copy(z.begin(), z.end(), out.begin() + static_cast<ptrdiff_t>(begin));
  }
  return out;
}

void Probe::logits_and_gradients(const std::vector<int32_t>& tokens, const std::vector<float>& embeddings,
                                 int n, std::vector<double>* logits, std::vector<float>* gradients) {
  const int T = static_cast<int>(tokens.size());
  check_length(tokens.size());
  const size_t TC = static_cast<size_t>(T) * config_.d_model;
  if (embeddings.size() != static_cast<size_t>(n) * TC) fail("internal: embeddings of the wrong size");
  logits->resize(n);
  gradients->resize(embeddings.size());
  std::vector<int32_t> batch_tokens;
  for (int begin = 0; begin < n; begin += batch_) {
    const int B = std::min(batch_, n - begin);
    batch_tokens.clear();
    for (int i = 0; i < B; ++i) batch_tokens.insert(batch_tokens.end(), tokens.begin(), tokens.end());
    const std::vector<int> lengths(B, T);
    embedded_.assign(embeddings.begin() + static_cast<ptrdiff_t>(begin * TC),
                     embeddings.begin() + static_cast<ptrdiff_t>((begin + B) * TC));
    embed_positions(B, T);
    const std::vector<double> z = forward(batch_tokens.data(), lengths.data(), B, T, /*train=*/true);
    std::copy(z.begin(), z.end(), logits->begin() + begin);
    backward(B, T, gradients->data() + static_cast<size_t>(begin) * TC);
  }
}

void Probe::forward_one(const std::vector<int32_t>& tokens) {
  const int T = static_cast<int>(tokens.size());
  check_length(tokens.size());
  embedded_ = token_embeddings(tokens);
  embed_positions(1, T);
  forward(tokens.data(), &T, 1, T, /*train=*/true);
}

std::vector<std::vector<double>> Probe::attention(const std::vector<int32_t>& tokens) {
  const int T = static_cast<int>(tokens.size());
  forward_one(tokens);
  const int NH = config_.heads;
  const size_t TT = static_cast<size_t>(T) * T;
  std::vector<std::vector<double>> out(config_.layers, std::vector<double>(TT, 0.0));
  for (int l = 0; l < config_.layers; ++l) {
    const float* probs = trunk().attention_probs(l);  // (1, NH, T, T)
    for (int h = 0; h < NH; ++h) {
      for (size_t k = 0; k < TT; ++k) out[l][k] += probs[h * TT + k] / NH;
    }
  }
  trunk().release_activations();
  return out;
}

std::vector<std::vector<double>> Probe::last_block_heads(const std::vector<int32_t>& tokens) {
  const size_t TT = tokens.size() * tokens.size();
  forward_one(tokens);
  const float* probs = trunk().attention_probs(config_.layers - 1);  // (1, NH, T, T)
  std::vector<std::vector<double>> out;
  for (int h = 0; h < config_.heads; ++h) out.emplace_back(probs + h * TT, probs + (h + 1) * TT);
  trunk().release_activations();
  return out;
}

AttentionGradients Probe::attention_gradients(const std::vector<int32_t>& tokens) {
  const int T = static_cast<int>(tokens.size());
  const size_t NHTT = static_cast<size_t>(config_.heads) * T * T;
  AttentionGradients out;
  out.heads = config_.heads;
  forward_one(tokens);
  for (int l = 0; l < config_.layers; ++l) {  // the backward frees them
    const float* probs = trunk().attention_probs(l);
    out.probs.emplace_back(probs, probs + NHTT);
  }
  std::vector<float> unused(static_cast<size_t>(T) * config_.d_model);
  trunk().keep_attention_grads(true);
  backward(1, T, unused.data());
  trunk().keep_attention_grads(false);
  for (int l = 0; l < config_.layers; ++l) {
    const float* grads = trunk().attention_grads(l);
    out.grads.emplace_back(grads, grads + NHTT);
  }
  return out;
}

namespace {

class ClassifierProbe : public Probe {
 public:
  ClassifierProbe(const std::string& run_dir, int batch)
      : ClassifierProbe(fairness::load_classifier(run_dir, /*embedding=*/false), run_dir, batch) {}

  const char* kind() const override { return "classifier"; }
  const Tokenizer& tokenizer() const override { return *loaded_.tokenizer; }
  int seq_len() const override { return loaded_.seq_len; }

  Outcome fix_outcome(const std::vector<int32_t>& tokens) override {
    const double p = probability(logits({tokens})[0], 1);
    const int label = p >= 0.5 ? 1 : 0;
    return {label, label == 1 ? p : 1 - p, label == 1 ? "positive (1)" : "negative (0)"};
  }
  double probability(double z, int label) const override {
    const double p1 = 1.0 / (1.0 + std::exp(-z));
    return label == 1 ? p1 : 1.0 - p1;
  }
  std::vector<int> read_positions(int T) const override {
    if (loaded_.model->pooling() == fairness::Pooling::kLast) return {T - 1};
    std::vector<int> all(T);
    for (int t = 0; t < T; ++t) all[t] = t;
    return all;
  }

 protected:
  Gpt<float>& trunk() override { return loaded_.model->trunk(); }
  std::vector<double> forward(const int32_t* tokens, const int* lengths, int B, int T, bool train) override {
    const std::vector<float>& z = loaded_.model->forward(
        tokens, lengths, B, T, train ? Gpt<float>::Pass::kTrain : Gpt<float>::Pass::kInference, embedded());
    return {z.begin(), z.begin() + B};
  }
  void backward(int B, int T, float* input_grad) override {
    loaded_.model->zero_grads();
    const std::vector<float> ones(B, 1.0f);
    loaded_.model->backward(ones.data());
    std::copy_n(loaded_.model->input_grad(), static_cast<size_t>(B) * T * config_.d_model, input_grad);
  }

 private:
  ClassifierProbe(fairness::LoadedClassifier loaded, const std::string& run_dir, int batch)
      : Probe(loaded.model->trunk().config(), run_dir, batch), loaded_(std::move(loaded)) {
    load_embeddings((std::filesystem::path(run_dir) / fairness::kClassifierWeights).string());
  }

  fairness::LoadedClassifier loaded_;
};

}  // namespace

std::unique_ptr<Probe> open_classifier(const std::string& run_dir, int batch) {
  return std::make_unique<ClassifierProbe>(run_dir, batch);
}

std::unique_ptr<Probe> open_probe(const std::string& path, int batch) {
  if (std::filesystem::exists(std::filesystem::path(path) / fairness::kClassifierInfo))
    return open_classifier(path, batch);
  try {
    resolve_checkpoint(path);
  } catch (const Error& e) {
    fail_usage("{} is neither a classifier run (it has no {}) nor a language model's run or checkpoint ({})",
               path, fairness::kClassifierInfo, e.what());
  }
  return open_language_model(path, batch);
}

}  // namespace triad::explain
