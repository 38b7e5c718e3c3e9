#pragma once
// Validation loss: the mean next-token loss over the first `batches` x `batch` windows of a split, read in
// storage order, so every evaluation of a run sees the same tokens.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "triad/data/sampler.h"
#include "triad/data/tokenizer.h"
#include "triad/model/generate.h"
#include "triad/model/gpt.h"

namespace triad {

struct EvalResult {
  double loss = 0;
  uint64_t tokens = 0;
  double perplexity() const;
};

// `batches` is capped so that no window is read twice; 0 means the whole split.
EvalResult evaluate(Gpt<float>& model, const TokenDataset& data, int batches, int batch, int seq_len);

// One rank's share of an evaluation spread over `world` ranks: rank r computes batches r, r + world, …
// and leaves the other entries of `batch_loss` at 0. Summing the vectors over the ranks (x + 0 = x) gives
// every batch's loss exactly, and combine_shares() adds them in batch order, as one process does: the result
// matches one process's evaluate() to the last bit the forward allows.
struct EvalShare {
  std::vector<double> batch_loss;  // per batch: mean next-token loss
  uint64_t tokens_per_batch = 0;
};
EvalShare evaluate_share(Gpt<float>& model, const TokenDataset& data, int batches, int batch, int seq_len,
                         int rank, int world);
// The same with the forward given: (inputs, targets, B, T) -> the batch's mean loss (0 from a rank that does
// not report it, as under model parallelism).
using BatchForward = std::function<double(const int32_t*, const int32_t*, int, int)>;
EvalShare evaluate_share(const BatchForward& forward, const TokenDataset& data, int batches, int batch,
                         int seq_len, int rank, int world);
EvalResult combine_shares(const EvalShare& all);

// What the model says after `prompt`: the prompt as decoded and its continuation; `generated` (optional)
// counts the new tokens. A prompt of no tokens, or one that fills the model's window, is a usage error.
std::string sample_text(const Gpt<float>& model, const Tokenizer& tokenizer, const std::string& prompt,
                        const SampleOptions& options, size_t* generated = nullptr);

// Splits (B, T + 1) windows into inputs and next-token targets, both (B, T).
void split_windows(const int32_t* windows, int B, int T, int32_t* inputs, int32_t* targets);

}  // namespace triad
