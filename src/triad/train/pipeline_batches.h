#pragma once
// The batch gradient of one pipeline stage (Tier I): the step's micro-batches run through the stages in the
// order of parallel/pipeline_schedule.h (1F1B or GPipe), activations passed forward and their gradients
// back between neighbouring stages. Each micro-batch's activations live in their own slot of the model
// (Gpt::use_slot) from its forward to its backward.
//
// Receives wait (within --comm-timeout, naming the stage waited on); sends are started and completed at
// the end of the step, so no order of sends and receives between two stages can deadlock (1F1B's stages
// run different orders: after F0 both p-2 and p-1 send).

#include <cstdint>
#include <vector>

#include "triad/comm/context.h"
#include "triad/parallel/pipeline_schedule.h"
#include "triad/train/batch_gradient.h"

namespace triad {

class PipelineBatches : public BatchGradient {
 public:
  // `pipeline`: this rank's pipeline group (index = stage). `rows` of the `batch` sequences are this
  // data-parallel rank's, run as `micro_batches` micro-batches of T tokens.
  PipelineBatches(comm::Context& pipeline, parallel::PipelineSchedule schedule, Sampler& sampler, int batch,
                  int rows, int micro_batches, int T);
  BatchResult compute(Gpt<float>& model, const Gpt<float>::BlockDone& hook) override;
  // The last compute()'s bubble (the share of stage time spent waiting), each stage's busy time, and the
  // bubble of a synchronous pipeline of equal stages.
  void report(const BatchTotals& all, StepRecord* record) const override;

  // A forward of (B, T) tokens through every stage: the mean loss on the last stage, 0 elsewhere.
  double forward_only(Gpt<float>& model, const int32_t* inputs, const int32_t* targets, int B, int T);

 private:
  void forward(Gpt<float>& model, int k);
  void backward(Gpt<float>& model, int k, const Gpt<float>::BlockDone& hook);
  void receive(float* data, int peer, int tag, const std::string& what);
  std::string what(const char* kind, int k, int peer) const;

  comm::Context& pipeline_;
  parallel::PipelineSchedule schedule_;
  Sampler& sampler_;
  int batch_, rows_, micro_batches_, T_;
  int stage_, stages_;
  std::vector<int32_t> windows_, inputs_, targets_;
  std::vector<float> received_;           // the activation or gradient being received
  std::vector<std::vector<float>> sent_;  // per micro-batch and direction, until the sends complete
  std::vector<MPI_Request> sends_;
  double loss_sum_ = 0, recompute_seconds_ = 0;
  double wait_seconds_ = 0, step_seconds_ = 0;  // in receives and the sends' completion; all of compute()
  std::vector<double> busy_seconds_;            // per stage: its compute() time not spent waiting
  float scale_ = 0;
};

}  // namespace triad
