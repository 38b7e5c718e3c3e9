#pragma once
// What a rank of a model-parallel layout holds and how its parts meet (Tier I):
//
//   shard_of(...)          this rank's pipeline stage (its blocks, embedding, head) and tensor slice
//   ContextTensorGroup     the model's tensor-group sums and maxima (model/tensor_group.h) over MPI
//   gather_whole(...)      every part of one model copy to rank 0 as whole tensors by name: checkpoints
//                          store the model as one process would, so a run resumes at any layout
//
// The pipeline's schedule and stage split are parallel/pipeline_schedule.h's.

#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/model/params.h"
#include "triad/model/tensor_group.h"
#include "triad/parallel/layout.h"

namespace triad::parallel {

// stage_first[s]: the first block of pipeline stage s, then the number of blocks (pipeline_schedule.h).
ModelShard shard_of(const Layout& layout, const Coordinates& at, const std::vector<int>& stage_first);

// "model parallel: 2 data x 1 tensor x 2 pipeline stages (blocks 0-2, 3), 1f1b, 4 micro-batches"
std::string describe(const Layout& layout, const std::vector<int>& stage_first, const std::string& schedule,
                     int micro_batches);

class ContextTensorGroup : public TensorGroup {
 public:
  explicit ContextTensorGroup(comm::Context& group) : group_(group) {}
  void sum(float* values, size_t count, const char* what) override;
  void max(float* values, size_t count, const char* what) override;

 private:
  comm::Context& group_;
};

// Collective over `world`: buffers[i] of every rank is laid out as its own shard's ParameterLayout
// (`local`); rank 0 receives them as whole-model buffers (ParameterLayout(config) order), each tensor from
// the ranks of data-parallel index 0 that hold its slices. Other ranks get empty buffers.
std::vector<std::vector<float>> gather_whole(comm::Context& world, const GptConfig& config,
                                             const Layout& layout, const std::vector<int>& stage_first,
                                             const ParameterLayout& local,
                                             const std::vector<const float*>& buffers);

}  // namespace triad::parallel
