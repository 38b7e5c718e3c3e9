#pragma once
// Validation loss: the mean next-token loss over the first `batches` x `batch` windows of a split, read in
// storage order, so every evaluation of a run sees the same tokens.

#include <cstdint>

#include "triad/data/sampler.h"
#include "triad/model/gpt.h"

namespace triad {

struct EvalResult {
  double loss = 0;
  uint64_t tokens = 0;
  double perplexity() const;
};

// `batches` is capped so that no window is read twice; 0 means the whole split.
EvalResult evaluate(Gpt<float>& model, const TokenDataset& data, int batches, int batch, int seq_len);

// Splits (B, T + 1) windows into inputs and next-token targets, both (B, T).
void split_windows(const int32_t* windows, int B, int T, int32_t* inputs, int32_t* targets);

}  // namespace triad
