#include "triad/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace triad {

double EvalResult::perplexity() const {
  return std::exp(loss);
}

void split_windows(const int32_t* windows, int B, int T, int32_t* inputs, int32_t* targets) {
  for (int b = 0; b < B; ++b) {
    const int32_t* w = windows + static_cast<size_t>(b) * (T + 1);
    std::copy(w, w + T, inputs + static_cast<size_t>(b) * T);
    std::copy(w + 1, w + T + 1, targets + static_cast<size_t>(b) * T);
  }
}

EvalShare evaluate_share(Gpt<float>& model, const TokenDataset& data, int batches, int batch, int seq_len,
                         int rank, int world) {
  auto forward = [&](const int32_t* inputs, const int32_t* targets, int B, int T) {
    return model.forward(inputs, targets, B, T, Gpt<float>::Pass::kInference);
  };
  EvalShare share = evaluate_share(forward, data, batches, batch, seq_len, rank, world);
  model.release_activations();
  return share;
}

EvalShare evaluate_share(const BatchForward& forward, const TokenDataset& data, int batches, int batch,
                         int seq_len, int rank, int world) {
  Sampler sampler(data, {.seq_len = seq_len, .shuffle = false});
  const int64_t available = static_cast<int64_t>(sampler.windows_per_epoch());
  batch = static_cast<int>(std::min<int64_t>(batch, available));
  const int64_t max_batches = available / batch;
  const int64_t n = batches <= 0 ? max_batches : std::min<int64_t>(batches, max_batches);
  std::vector<int32_t> windows(static_cast<size_t>(batch) * (seq_len + 1));
  std::vector<int32_t> inputs(static_cast<size_t>(batch) * seq_len), targets(inputs.size());
  EvalShare share;
  share.batch_loss.assign(static_cast<size_t>(n), 0.0);
  share.tokens_per_batch = static_cast<uint64_t>(batch) * seq_len;
  for (int64_t i = 0; i < n; ++i) {
    sampler.next_batch(batch, windows.data());  // every rank reads every batch: the sampler has no skip
    if (i % world != rank) continue;
    split_windows(windows.data(), batch, seq_len, inputs.data(), targets.data());
    share.batch_loss[static_cast<size_t>(i)] = forward(inputs.data(), targets.data(), batch, seq_len);
  }
  return share;
}

EvalResult combine_shares(const EvalShare& all) {
  double sum = 0;
  for (double loss : all.batch_loss) sum += loss;
  const size_t n = all.batch_loss.size();
  EvalResult r;
  r.loss = n > 0 ? sum / static_cast<double>(n) : 0.0;
  r.tokens = n * all.tokens_per_batch;
  return r;
}

EvalResult evaluate(Gpt<float>& model, const TokenDataset& data, int batches, int batch, int seq_len) {
  return combine_shares(evaluate_share(model, data, batches, batch, seq_len, 0, 1));
}

std::string sample_text(const Gpt<float>& model, const Tokenizer& tokenizer, const std::string& prompt,
                        const SampleOptions& options, size_t* generated) {
  std::vector<int> ids;
  tokenizer.encode(prompt, &ids);
  std::vector<int32_t> out =
      generate(model, std::vector<int32_t>(ids.begin(), ids.end()), options, tokenizer.eos_id());
  if (generated) *generated = out.size();
  ids.insert(ids.end(), out.begin(), out.end());
  return tokenizer.decode(ids);
}

}  // namespace triad
