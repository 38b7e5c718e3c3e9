#pragma once
// What computes this rank's gradient of one batch into model.grads(): the first part of a training step,
// the one that differs between ways of training. Language modelling runs K micro-batches of the sampler's
// windows; DP-SGD runs its Poisson batch one example at a time, clipped and noised (train/dp_sgd.h). A
// classifier head or a fairness adversary is another implementation; the rest of the step (reduction,
// clipping, optimizer, record) is the same for all.

#include <cstdint>
#include <memory>
#include <vector>

#include "triad/data/sampler.h"
#include "triad/model/gpt.h"
#include "triad/train/dp_sgd.h"
#include "triad/train/records.h"

namespace triad {

class Teacher;  // train/teacher.h

// Summed over the ranks after the backward (in one collective), as the names say.
struct BatchTotals {
  double loss_sum = 0;       // the losses this rank measured; the step's loss is Σ loss_sum / Σ loss_count
  double loss_count = 0;     // how many losses loss_sum adds up
  double hard_loss_sum = 0;  // distilling: the cross-entropy part of loss_sum, summed the same way
  double sequences = 0;      // sequences trained on (for tokens/s)
  double clipped = 0;        // DP-SGD: examples whose gradient was clipped
};

struct BatchResult {
  BatchTotals totals;
  double recompute_seconds = 0;  // this rank's time recomputing dropped activations
};

class BatchGradient {
 public:
  virtual ~BatchGradient() = default;
  // Leaves this rank's gradient of the next batch in model.grads(); `hook` goes to the backward of the last
  // micro-batch (it hands gradients to the reduction as blocks finish).
  virtual BatchResult compute(Gpt<float>& model, const Gpt<float>::BlockDone& hook) = 0;
  // Adds what this way of training reports, from the totals over all ranks.
  virtual void report(const BatchTotals& /*all*/, StepRecord* /*record*/) const {}
};

// `batch` sequences per step from the sampler over `ranks` data-parallel ranks, this rank's equal share of
// them (the sampler's rows) in `micro_batches` micro-batches of `T` tokens; the gradient of the mean token
// loss over the global batch. With a `teacher` (knowledge distillation), the loss of each micro-batch mixes
// in the teacher's soft targets on the same tokens (kernels/lm_head.h); the step reports the hard loss too.
class LanguageModelBatches : public BatchGradient {
 public:
  LanguageModelBatches(Sampler& sampler, int batch, int ranks, int micro_batches, int T,
                       Teacher* teacher = nullptr);
  BatchResult compute(Gpt<float>& model, const Gpt<float>::BlockDone& hook) override;
  void report(const BatchTotals& all, StepRecord* record) const override;
  // From the next compute() on, this rank trains rows [offset, offset + rows) of each batch (--balance,
  // parallel/balance.h): rows >= micro-batches, split rows / K to a micro-batch with the first rows % K
  // taking one more; the step's loss then weighs each row once (Σ over ranks of loss_sum / B).
  void set_share(int offset, int rows);

 private:
  Sampler& sampler_;
  int batch_, ranks_, micro_batches_, T_;
  int offset_ = 0, rows_;
  bool shared_ = false;  // set_share() was called: the rows it gave, each row's loss weighed
  Teacher* teacher_;
  double teacher_seconds_ = 0;  // the last step's teacher forwards
  std::vector<int32_t> windows_, inputs_, targets_;
};

// DP-SGD: clipped per-example gradients of a Poisson batch plus noise; the step reports ε.
class DpSgdBatches : public BatchGradient {
 public:
  DpSgdBatches(DpSgd& dp, int T) : dp_(dp), T_(T) {}
  BatchResult compute(Gpt<float>& model, const Gpt<float>::BlockDone& hook) override;
  void report(const BatchTotals& all, StepRecord* record) const override;

 private:
  DpSgd& dp_;
  int T_;
};

}  // namespace triad
