#pragma once
// A classifier run directory (`triad classify --out RUN`):
//   RUN/classifier.safetensors  the trunk's tensors by the LM's names, ln_f.*, cls.weight, cls.bias
//   RUN/classifier.json         {"format": "triad-classifier", model, pool, seq_len, tokenizer_sha256,
//                                init (the LM checkpoint it started from), options, result}
//   RUN/tokenizer.model         the LM's tokenizer (token ids mean nothing under another)
//   RUN/metrics.jsonl, RUN/audit/…  as a training run's
// and the text → token batches both fine-tuning and prediction use.

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/data/tokenizer.h"
#include "triad/fairness/classifier.h"

namespace triad::fairness {

inline constexpr const char* kClassifierWeights = "classifier.safetensors";
inline constexpr const char* kClassifierInfo = "classifier.json";

// Texts as right-padded token rows of T, each truncated to its first T tokens (an empty text becomes one
// end-of-sequence token, so that every row has a token to pool).
struct EncodedTexts {
  int T = 0;
  std::vector<int32_t> tokens;  // (N, T)
  std::vector<int> lengths;     // (N)
  size_t size() const { return lengths.size(); }
  size_t truncated = 0;  // texts longer than T tokens
};
EncodedTexts encode_texts(const Tokenizer& tokenizer, const std::vector<std::string>& texts, int T);

// Writes the weights and the info (atomically each); `info` gains "format" and the model's fields.
void save_classifier(const std::string& run_dir, const Classifier<float>& model, int seq_len,
                     nlohmann::json info);

struct LoadedClassifier {
  std::unique_ptr<Classifier<float>> model;
  std::unique_ptr<Tokenizer> tokenizer;
  int seq_len = 0;
  nlohmann::json info;
};
// A classifier run; errors name the file that is missing or does not match. Without `embedding` the trunk
// starts at the first block (Classifier's `embedded` forward); wte and wpe stay in the file.
LoadedClassifier load_classifier(const std::string& run_dir, bool embedding = true);

// Loads an LM checkpoint's weights into the trunk and its ln_f into the head.
void load_lm_into(const std::string& checkpoint_dir, Classifier<float>* model);

// σ(z) for every row, `batch` rows at a time, without keeping activations.
std::vector<float> predict_probabilities(Classifier<float>& model, const EncodedTexts& texts, int batch);

}  // namespace triad::fairness
