#include "triad/train/batch_gradient.h"

#include "triad/train/evaluate.h"

namespace triad {

LanguageModelBatches::LanguageModelBatches(Sampler& sampler, int batch, int rows, int micro_batches, int T)
    : sampler_(sampler),
      batch_(batch),
      rows_(rows),
      micro_batches_(micro_batches),
      T_(T),
      windows_(static_cast<size_t>(rows) * (T + 1)),
      inputs_(static_cast<size_t>(rows) * T),
      targets_(inputs_.size()) {}

BatchResult LanguageModelBatches::compute(Gpt<float>& model, const Gpt<float>::BlockDone& hook) {
  sampler_.next_batch(batch_, windows_.data());  // every rank draws the batch and keeps its rows
  split_windows(windows_.data(), rows_, T_, inputs_.data(), targets_.data());
  model.zero_grads();
  const int K = micro_batches_, mb = rows_ / K;
  // Each micro-batch's loss is a mean over its tokens; scaling by 1 / (rows T) makes the gradients add up
  // to that of the mean over this rank's rows (the reduction then averages the ranks).
  const float scale = 1.0f / static_cast<float>(static_cast<size_t>(rows_) * T_);
  BatchResult r;
  for (int k = 0; k < K; ++k) {
    const size_t offset = static_cast<size_t>(k) * mb * T_;
    r.totals.loss_sum += model.forward(inputs_.data() + offset, targets_.data() + offset, mb, T_) / K;
    model.backward(scale, k == K - 1 ? hook : nullptr);
    r.recompute_seconds += model.recompute_seconds();
  }
  r.totals.loss_count = 1;  // this rank's mean
  r.totals.sequences = rows_;
  return r;
}

BatchResult DpSgdBatches::compute(Gpt<float>& model, const Gpt<float>::BlockDone& /*hook*/) {
  // Every example has its own backward: the reduction starts once the whole privatised gradient is there.
  DpBatchStats dp = dp_.step(model, T_);
  BatchResult r;
  r.totals = {.loss_sum = dp.loss * dp.examples,
              .loss_count = static_cast<double>(dp.examples),
              .sequences = static_cast<double>(dp.examples),
              .clipped = static_cast<double>(dp.clipped)};
  return r;
}

void DpSgdBatches::report(const BatchTotals& all, StepRecord* record) const {
  record->privacy = dp_.report(static_cast<int>(all.sequences), static_cast<int>(all.clipped));
}

}  // namespace triad
