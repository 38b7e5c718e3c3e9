#include "triad/train/batch_gradient.h"

#include "triad/core/error.h"
#include "triad/train/evaluate.h"
#include "triad/train/teacher.h"

namespace triad {

LanguageModelBatches::LanguageModelBatches(Sampler& sampler, int batch, int ranks, int micro_batches, int T,
                                           Teacher* teacher)
    : sampler_(sampler),
      batch_(batch),
      ranks_(ranks),
      micro_batches_(micro_batches),
      T_(T),
      rows_(batch / ranks),
      teacher_(teacher),
      windows_(static_cast<size_t>(rows_) * (T + 1)),
      inputs_(static_cast<size_t>(rows_) * T),
      targets_(inputs_.size()) {}

void LanguageModelBatches::set_share(int offset, int rows) {
  if (rows < micro_batches_ || offset < 0 || offset + rows > batch_) {
    fail("rows [{}, {}) of a batch of {} do not make {} micro-batches", offset, offset + rows, batch_,
         micro_batches_);
  }
  shared_ = true;
  offset_ = offset;
  rows_ = rows;
  windows_.resize(static_cast<size_t>(rows) * (T_ + 1));
  inputs_.resize(static_cast<size_t>(rows) * T_);
  targets_.resize(inputs_.size());
}

BatchResult LanguageModelBatches::compute(Gpt<float>& model, const Gpt<float>::BlockDone& hook) {
  // Every rank draws the batch and keeps its rows.
  if (shared_) {
    sampler_.next_rows(batch_, offset_, rows_, windows_.data());
  } else {
    sampler_.next_batch(batch_, windows_.data());
  }
  split_windows(windows_.data(), rows_, T_, inputs_.data(), targets_.data());
  model.zero_grads();
  const int K = micro_batches_;
  // Each micro-batch's loss is a mean over its tokens; scaling by ranks / (B T) makes this rank's gradients
  // add up to its part of the gradient of the mean over all B T tokens, times ranks, which the reduction's
  // average over the ranks takes off. With equal shares that is 1 / (rows T), the same float: ranks and
  // B T are exact in float (B T below 2^24), and division rounds the one quotient both expressions name.
  const float scale = static_cast<float>(ranks_) / static_cast<float>(static_cast<size_t>(batch_) * T_);
  BatchResult r;
  size_t offset = 0;
  const double teacher_started = teacher_ ? teacher_->seconds() : 0;
  for (int k = 0; k < K; ++k) {
    const int mb = rows_ / K + (k < rows_ % K ? 1 : 0);
    if (teacher_) model.set_soft_targets(&teacher_->forward(inputs_.data() + offset, mb, T_));
    const double loss = model.forward(inputs_.data() + offset, targets_.data() + offset, mb, T_);
    const double hard_loss = model.hard_loss_sum() / (static_cast<double>(mb) * T_);
    r.totals.loss_sum += shared_ ? loss * mb : loss / K;
    r.totals.hard_loss_sum += shared_ ? hard_loss * mb : hard_loss / K;
    model.backward(scale, k == K - 1 ? hook : nullptr);
    r.recompute_seconds += model.recompute_seconds();
    offset += static_cast<size_t>(mb) * T_;
  }
  // Equal shares: the mean of the ranks' means. Uneven: Σ loss_sum / Σ loss_count is the mean over rows.
  r.totals.loss_count = shared_ ? rows_ : 1;
  r.totals.sequences = rows_;
  if (teacher_) teacher_seconds_ = teacher_->seconds() - teacher_started;
  return r;
}

void LanguageModelBatches::report(const BatchTotals& all, StepRecord* record) const {
  if (teacher_) {
    record->distill = StepRecord::Distill{.hard_loss = all.hard_loss_sum / all.loss_count,
                                          .teacher_ms = teacher_seconds_ * 1e3};
  }
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
