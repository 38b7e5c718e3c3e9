#include "triad/train/pipeline_batches.h"

#include <fmt/format.h>

#include <chrono>

#include "triad/comm/collectives.h"
#include "triad/core/clock.h"
#include "triad/train/evaluate.h"

namespace triad {

namespace {

constexpr int kActivationTag = 0, kGradientTag = 1;  // tag = 2 k + direction
}  // namespace

PipelineBatches::PipelineBatches(comm::Context& pipeline, parallel::PipelineSchedule schedule,
                                 Sampler& sampler, int batch, int rows, int micro_batches, int T)
    : pipeline_(pipeline),
      schedule_(schedule),
      sampler_(sampler),
      batch_(batch),
      rows_(rows),
      micro_batches_(micro_batches),
      T_(T),
      stage_(pipeline.rank()),
      stages_(pipeline.world()),
      windows_(static_cast<size_t>(rows) * (T + 1)),
      inputs_(static_cast<size_t>(rows) * T),
      targets_(inputs_.size()),
      sent_(2 * static_cast<size_t>(micro_batches)) {}

std::string PipelineBatches::what(const char* kind, int k, int peer) const {
  return fmt::format("pipeline stage {}: {} of micro-batch {} from stage {}", stage_, kind, k, peer);
}

void PipelineBatches::receive(float* data, int peer, int tag, const std::string& what) {
  const auto t0 = Clock::now();
  comm::receive(pipeline_, data, received_.size(), peer, tag, what);
  wait_seconds_ += seconds_since(t0);
}

void PipelineBatches::report(const BatchTotals& /*all*/, StepRecord* record) const {
  StepRecord::Pipeline p;
  p.bubble_predicted = parallel::bubble_fraction(stages_, micro_batches_);
  double busy = 0;
  for (double s : busy_seconds_) {
    busy += s;
    p.stage_busy_ms.push_back(s * 1e3);
  }
  if (step_seconds_ > 0) p.bubble = 1 - busy / (stages_ * step_seconds_);
  record->pipeline = std::move(p);
}

BatchResult PipelineBatches::compute(Gpt<float>& model, const Gpt<float>::BlockDone& hook) {
  const auto started = Clock::now();
  wait_seconds_ = 0;
  sampler_.next_batch(batch_, windows_.data());  // every stage draws the batch: the same sampler position
  split_windows(windows_.data(), rows_, T_, inputs_.data(), targets_.data());
  model.zero_grads();
  const int mb = rows_ / micro_batches_;
  received_.resize(static_cast<size_t>(mb) * T_ * model.config().d_model);
  // As LanguageModelBatches: the gradients add up to that of the mean over this rank's rows.
  scale_ = 1.0f / static_cast<float>(static_cast<size_t>(rows_) * T_);
  loss_sum_ = recompute_seconds_ = 0;
  const auto ops = parallel::stage_ops(schedule_, stage_, stages_, micro_batches_);
  for (size_t i = 0; i < ops.size(); ++i) {
    const parallel::PipelineOp& op = ops[i];
    if (op.kind == parallel::PipelineOp::Kind::kForward) {
      forward(model, op.micro_batch);
    } else {
      backward(model, op.micro_batch, i + 1 == ops.size() ? hook : nullptr);
    }
  }
  const auto t0 = Clock::now();
  pipeline_.wait(sends_.data(), static_cast<int>(sends_.size()), "pipeline: completing the step's sends");
  wait_seconds_ += seconds_since(t0);
  sends_.clear();
  // Every stage's busy time (not waiting for its neighbours), for the record: the bubble and the balance.
  busy_seconds_.assign(static_cast<size_t>(stages_), 0.0);
  busy_seconds_[static_cast<size_t>(stage_)] = seconds_since(started) - wait_seconds_;
  comm::allreduce_sum(pipeline_, busy_seconds_.data(), stages_, "pipeline: stage times");
  step_seconds_ = seconds_since(started);
  model.use_slot(0);
  BatchResult r;
  if (model.shard().head) {
    r.totals.loss_sum = loss_sum_ / micro_batches_;  // this rank's mean
    r.totals.loss_count = 1;
    r.totals.sequences = rows_;
  }
  r.recompute_seconds = recompute_seconds_;
  return r;
}

void PipelineBatches::forward(Gpt<float>& model, int k) {
  const int mb = rows_ / micro_batches_;
  const size_t offset = static_cast<size_t>(k) * mb * T_;
  model.use_slot(k);
  if (stage_ > 0) {
    receive(received_.data(), stage_ - 1, 2 * k + kActivationTag, what("activations", k, stage_ - 1));
  }
  const bool head = model.shard().head;
  loss_sum_ += model.forward(inputs_.data() + offset, head ? targets_.data() + offset : nullptr, mb, T_,
                             Gpt<float>::Pass::kTrain, stage_ > 0 ? received_.data() : nullptr);
  if (head) return;
  std::vector<float>& out = sent_[2 * static_cast<size_t>(k) + kActivationTag];
  out.assign(model.stage_output(), model.stage_output() + received_.size());
  sends_.push_back(comm::start_send(pipeline_, out.data(), out.size(), stage_ + 1, 2 * k + kActivationTag,
                                    "pipeline: sending activations"));
}

void PipelineBatches::backward(Gpt<float>& model, int k, const Gpt<float>::BlockDone& hook) {
  model.use_slot(k);
  const bool head = model.shard().head;
  if (!head) {
    receive(received_.data(), stage_ + 1, 2 * k + kGradientTag, what("gradients", k, stage_ + 1));
  }
  model.backward(scale_, hook, head ? nullptr : received_.data());
  recompute_seconds_ += model.recompute_seconds();
  if (stage_ == 0) return;
  std::vector<float>& out = sent_[2 * static_cast<size_t>(k) + kGradientTag];
  out.assign(model.stage_input_grad(), model.stage_input_grad() + received_.size());
  sends_.push_back(comm::start_send(pipeline_, out.data(), out.size(), stage_ - 1, 2 * k + kGradientTag,
                                    "pipeline: sending gradients"));
}

double PipelineBatches::forward_only(Gpt<float>& model, const int32_t* inputs, const int32_t* targets, int B,
                                     int T) {
  std::vector<float> x(static_cast<size_t>(B) * T * model.config().d_model);
  if (stage_ > 0)
    comm::receive(pipeline_, x.data(), x.size(), stage_ - 1, 0, "pipeline evaluation: activations");
  const bool head = model.shard().head;
  const double loss = model.forward(inputs, head ? targets : nullptr, B, T, Gpt<float>::Pass::kInference,
                                    stage_ > 0 ? x.data() : nullptr);
  if (!head)
    comm::send(pipeline_, model.stage_output(), x.size(), stage_ + 1, 0, "pipeline evaluation: sending");
  return loss;
}

}  // namespace triad
