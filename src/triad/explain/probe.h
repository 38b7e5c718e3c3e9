#pragma once
// A classifier run (`triad classify --out RUN`) seen from its input, for the explanation methods: the logit
// of any token sequences, its gradient with respect to each token's embedding, and every layer's attention.
//
// The trunk is loaded without its embedding, so that a forward can start from embeddings that are not a
// table lookup (integrated gradients walks the straight line from a baseline to the input):
//
//   x[t] = e[t] + wpe[t]        e[t] = wte[token t] (the "token embedding"), wpe the position embedding
//   z    = classifier(x)        the logit; p(label 1) = σ(z)
//
// Sequences of different lengths are right-padded into one batch (the trunk is causal and pooling skips
// the padding, so a row's logit does not depend on its neighbours). An empty sequence is the end-of-sequence
// token alone, as `triad predict` reads an empty text.

#include <cstdint>
#include <string>
#include <vector>

#include "triad/fairness/classifier_run.h"

namespace triad::explain {

class ClassifierProbe {
 public:
  // `batch`: sequences per forward.
  explicit ClassifierProbe(const std::string& run_dir, int batch = 32);

  const Tokenizer& tokenizer() const { return *loaded_.tokenizer; }
  int seq_len() const { return loaded_.seq_len; }
  int d_model() const { return config_.d_model; }
  int layers() const { return config_.layers; }
  fairness::Pooling pooling() const { return loaded_.model->pooling(); }

  // The logit of each sequence (each truncated to seq_len tokens).
  std::vector<double> logits(const std::vector<std::vector<int32_t>>& sequences);

  // e[t] = wte[tokens[t]], (T, C).
  std::vector<float> token_embeddings(const std::vector<int32_t>& tokens) const;

  // For `n` token-embedding matrices (n, T, C) of one token sequence (T = tokens.size() <= seq_len): each
  // one's logit and dz/de (n, T, C). The tokens only fix T (and are checked); the embeddings are the input.
  void logits_and_gradients(const std::vector<int32_t>& tokens, const std::vector<float>& embeddings, int n,
                            std::vector<double>* logits, std::vector<float>* gradients);

  // The attention of every layer for one sequence, averaged over heads: L matrices T x T (rows: queries).
  std::vector<std::vector<double>> attention(const std::vector<int32_t>& tokens);

 private:
  fairness::LoadedClassifier loaded_;
  GptConfig config_;
  int batch_;
  std::vector<float> wte_, wpe_;  // (V, C), (seq_len, C)
  std::vector<float> embedded_;   // the batch being run, (B, T, C)
  void embed_positions(int n, int T);
};

}  // namespace triad::explain
