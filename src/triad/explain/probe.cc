#include "triad/explain/probe.h"

#include <algorithm>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/safetensors.h"

namespace triad::explain {

using fairness::Classifier;

ClassifierProbe::ClassifierProbe(const std::string& run_dir, int batch)
    : loaded_(fairness::load_classifier(run_dir, /*embedding=*/false)),
      config_(loaded_.model->trunk().config()),
      batch_(std::max(1, batch)) {
  const SafetensorsFile file((std::filesystem::path(run_dir) / fairness::kClassifierWeights).string());
  const SafeTensor& wte = file.get("wte.weight", {config_.vocab, config_.d_model});
  const SafeTensor& wpe = file.get("wpe.weight", {config_.seq_len, config_.d_model});
  wte_.assign(wte.data, wte.data + static_cast<size_t>(config_.vocab) * config_.d_model);
  wpe_.assign(wpe.data, wpe.data + static_cast<size_t>(config_.seq_len) * config_.d_model);
}

std::vector<float> ClassifierProbe::token_embeddings(const std::vector<int32_t>& tokens) const {
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

void ClassifierProbe::embed_positions(int n, int T) {
  const size_t C = config_.d_model;
  for (int i = 0; i < n; ++i) {
    float* x = embedded_.data() + static_cast<size_t>(i) * T * C;
    for (size_t k = 0; k < static_cast<size_t>(T) * C; ++k) x[k] += wpe_[k];
  }
}

std::vector<double> ClassifierProbe::logits(const std::vector<std::vector<int32_t>>& sequences) {
  const int limit = seq_len();
  const int32_t eos = loaded_.tokenizer->eos_id();
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
    const std::vector<float>& z = loaded_.model->forward(tokens.data(), lengths.data(), B, T,
                                                         Gpt<float>::Pass::kInference, embedded_.data());
    for (int i = 0; i < B; ++i) out[begin + i] = z[i];
  }
  return out;
}

void ClassifierProbe::logits_and_gradients(const std::vector<int32_t>& tokens,
                                           const std::vector<float>& embeddings, int n,
                                           std::vector<double>* logits, std::vector<float>* gradients) {
  const int T = static_cast<int>(tokens.size());
  const size_t C = config_.d_model, TC = static_cast<size_t>(T) * C;
  if (T < 1 || T > seq_len())
    fail("internal: {} tokens to explain, the classifier reads 1 to {}", T, seq_len());
  if (embeddings.size() != static_cast<size_t>(n) * TC) fail("internal: embeddings of the wrong size");
  logits->resize(n);
  gradients->resize(embeddings.size());
  Classifier<float>& model = *loaded_.model;
  std::vector<int32_t> batch_tokens;
  for (int begin = 0; begin < n; begin += batch_) {
    const int B = std::min(batch_, n - begin);
    batch_tokens.clear();
    for (int i = 0; i < B; ++i) batch_tokens.insert(batch_tokens.end(), tokens.begin(), tokens.end());
    const std::vector<int> lengths(B, T);
    embedded_.assign(embeddings.begin() + static_cast<ptrdiff_t>(begin * TC),
                     embeddings.begin() + static_cast<ptrdiff_t>((begin + B) * TC));
    embed_positions(B, T);
    model.zero_grads();
    const std::vector<float>& z =
        model.forward(batch_tokens.data(), lengths.data(), B, T, Gpt<float>::Pass::kTrain, embedded_.data());
    for (int i = 0; i < B; ++i) (*logits)[begin + i] = z[i];
    const std::vector<float> ones(B, 1.0f);
    model.backward(ones.data());
    std::copy_n(model.input_grad(), B * TC, gradients->begin() + static_cast<ptrdiff_t>(begin * TC));
  }
}

std::vector<std::vector<double>> ClassifierProbe::attention(const std::vector<int32_t>& tokens) {
  const int T = static_cast<int>(tokens.size());
  if (T < 1 || T > seq_len())
    fail("internal: {} tokens to explain, the classifier reads 1 to {}", T, seq_len());
  embedded_ = token_embeddings(tokens);
  embed_positions(1, T);
  const int length = T;
  Gpt<float>& trunk = loaded_.model->trunk();
  loaded_.model->forward(tokens.data(), &length, 1, T, Gpt<float>::Pass::kTrain, embedded_.data());
  const int NH = config_.heads;
  const size_t TT = static_cast<size_t>(T) * T;
  std::vector<std::vector<double>> out(config_.layers, std::vector<double>(TT, 0.0));
  for (int l = 0; l < config_.layers; ++l) {
    const float* probs = trunk.attention_probs(l);  // (1, NH, T, T)
    for (int h = 0; h < NH; ++h) {
      for (size_t k = 0; k < TT; ++k) out[l][k] += probs[h * TT + k] / NH;
    }
  }
  return out;
}

}  // namespace triad::explain
