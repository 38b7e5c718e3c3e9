#pragma once
// A model seen from its input, for the explanation methods: a score of any token sequences, its gradient
// with respect to each token's embedding, and every layer's attention with its gradient. Two kinds:
//
//   ClassifierProbe      a classifier run (`triad classify --out RUN`): the score is the logit z,
//                        p(label 1) = σ(z)
//   LanguageModelProbe   a language-model checkpoint (`triad train`): the score is log p(target | sequence)
//                        at the sequence's last position, the target the token the model generates after
//                        the text being explained (fix_outcome)
//
// The trunk is loaded without its embedding, so that a forward can start from embeddings that are not a
// table lookup (integrated gradients walks the straight line from a baseline to the input):
//
//   x[t] = e[t] + wpe[t]        e[t] = wte[token t] (the "token embedding"), wpe the position embedding
//   z    = score(x)
//
// Sequences of different lengths are right-padded into one batch (the trunk is causal and the score reads
// no padding, so a row's score does not depend on its neighbours). An empty sequence is the
// end-of-sequence token alone, as `triad predict` reads an empty text.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "triad/data/tokenizer.h"
#include "triad/model/gpt.h"

namespace triad::explain {

// What is explained for one input.
struct Outcome {
  int label = 1;           // the classifier's prediction; 1 for a language model (its target)
  double probability = 0;  // of that label (of the target token)
  std::string name;        // "positive (1)", "next token \"cat\""
};

// Per layer, (NH, T, T) each: the attention probabilities and d(score toward the label)/d(probabilities).
struct AttentionGradients {
  int heads = 0;
  std::vector<std::vector<float>> probs, grads;
};

class Probe {
 public:
  virtual ~Probe() = default;

  // "classifier" or "language model"; the run directory (its audit log).
  virtual const char* kind() const = 0;
  const std::string& run_dir() const { return run_dir_; }
  virtual const Tokenizer& tokenizer() const = 0;
  virtual int seq_len() const = 0;
  int d_model() const { return config_.d_model; }
  int layers() const { return config_.layers; }

  // The outcome of `tokens` that the scores below are about (a language model fixes its target here).
  virtual Outcome fix_outcome(const std::vector<int32_t>& tokens) = 0;
  // p(label) from a score.
  virtual double probability(double score, int label) const = 0;
  // The positions whose hidden states the score reads (the queries its attention is read from).
  virtual std::vector<int> read_positions(int T) const = 0;

  // The score of each sequence (each truncated to seq_len tokens).
  std::vector<double> logits(const std::vector<std::vector<int32_t>>& sequences);

  // e[t] = wte[tokens[t]], (T, C).
  std::vector<float> token_embeddings(const std::vector<int32_t>& tokens) const;

  // For `n` token-embedding matrices (n, T, C) of one token sequence (T = tokens.size() <= seq_len): each
  // one's score and dz/de (n, T, C). The tokens only fix T (and are checked); the embeddings are the input.
  void logits_and_gradients(const std::vector<int32_t>& tokens, const std::vector<float>& embeddings, int n,
                            std::vector<double>* logits, std::vector<float>* gradients);

  // The attention of every layer for one sequence, averaged over heads: L matrices T x T (rows: queries).
  std::vector<std::vector<double>> attention(const std::vector<int32_t>& tokens);
  // The last block's attention, head by head: NH matrices T x T.
  std::vector<std::vector<double>> last_block_heads(const std::vector<int32_t>& tokens);
  // Every head's attention and the score's gradient with respect to it, for one sequence.
  AttentionGradients attention_gradients(const std::vector<int32_t>& tokens);

 protected:
  Probe(const GptConfig& config, std::string run_dir, int batch)
      : config_(config), run_dir_(std::move(run_dir)), batch_(std::max(1, batch)) {}
  // Reads wte and wpe from a safetensors file.
  void load_embeddings(const std::string& safetensors_path);
  const std::vector<float>& wte() const { return wte_; }
  const float* embedded() const { return embedded_.data(); }
  virtual Gpt<float>& trunk() = 0;
  // Runs the model from embedded_ (B, T, C) with each row's length; returns each row's score.
  virtual std::vector<double> forward(const int32_t* tokens, const int* lengths, int B, int T,
                                      bool train) = 0;
  // After a training forward: d(Σ scores)/d embedded_ into `input_grad` (B, T, C).
  virtual void backward(int B, int T, float* input_grad) = 0;

  GptConfig config_;
  std::string run_dir_;
  int batch_;

 private:
  std::vector<float> wte_, wpe_;  // (V, C), (seq_len, C)
  std::vector<float> embedded_;   // the batch being run, (B, T, C)
  void embed_positions(int n, int T);
  void check_length(size_t T) const;
  // A training forward of one sequence, so that every layer's attention is live.
  void forward_one(const std::vector<int32_t>& tokens);
};

// A classifier run.
std::unique_ptr<Probe> open_classifier(const std::string& run_dir, int batch = 32);
// A language model: a run directory (its latest checkpoint) or a step_N checkpoint directory.
std::unique_ptr<Probe> open_language_model(const std::string& checkpoint, int batch = 32);
// Either, told apart by the classifier run's classifier.json.
std::unique_ptr<Probe> open_probe(const std::string& path, int batch = 32);

}  // namespace triad::explain
