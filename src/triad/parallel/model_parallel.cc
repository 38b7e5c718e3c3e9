#include "triad/parallel/model_parallel.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "triad/comm/collectives.h"

namespace triad::parallel {

ModelShard shard_of(const Layout& layout, const Coordinates& at, const std::vector<int>& stage_first) {
  const int s = at.pipeline, stages = layout.pipeline;
  return {.first_block = stage_first[static_cast<size_t>(s)],
          .blocks = stage_first[static_cast<size_t>(s) + 1] - stage_first[static_cast<size_t>(s)],
          .embedding = s == 0,
          .head = s == stages - 1,
          .tensor_rank = at.tensor,
          .tensor_size = layout.tensor};
}

std::string describe(const Layout& layout, const std::vector<int>& first, const std::string& schedule,
                     int micro_batches) {
  std::vector<std::string> stages;
  for (size_t s = 0; s + 1 < first.size(); ++s) {
    stages.push_back(first[s + 1] - first[s] == 1 ? fmt::format("{}", first[s])
                                                  : fmt::format("{}-{}", first[s], first[s + 1] - 1));
  }
  std::string pipeline;
  if (layout.pipeline > 1) {
    pipeline =
        fmt::format(" (blocks {}), {}, {} micro-batches", fmt::join(stages, ", "), schedule, micro_batches);
  }
  return fmt::format("model parallel: {} data x {} tensor x {} pipeline stage{}{}", layout.data,
                     layout.tensor, layout.pipeline, layout.pipeline > 1 ? "s" : "", pipeline);
}

void ContextTensorGroup::sum(float* values, size_t count, const char* what) {
  comm::allreduce_sum(group_, values, count, what);
}

void ContextTensorGroup::max(float* values, size_t count, const char* what) {
  comm::allreduce_max(group_, values, count, what);
}

std::vector<std::vector<float>> gather_whole(comm::Context& world, const GptConfig& config,
                                             const Layout& layout, const std::vector<int>& stage_first,
                                             const ParameterLayout& local,
                                             const std::vector<const float*>& buffers) {
  // One copy of the model lives on the ranks of data-parallel index 0; they send [buffer 0 | buffer 1 | ...].
  std::vector<float> mine;
  if (coordinates(layout, world.rank()).data == 0) {
    for (const float* b : buffers) mine.insert(mine.end(), b, b + local.count());
  }
  std::vector<std::vector<float>> parts = comm::gather_to_root(world, mine, "checkpoint: model parts");
  if (world.rank() != 0) return {};
  const ParameterLayout whole_layout(config);
  std::vector<std::vector<float>> whole(buffers.size(), std::vector<float>(whole_layout.count()));
  for (int r = 0; r < world.world(); ++r) {
    const Coordinates at = coordinates(layout, r);
    if (at.data != 0) continue;
    const ParameterLayout theirs(config, shard_of(layout, at, stage_first));
    const float* part = parts[static_cast<size_t>(r)].data();
    for (size_t i = 0; i < buffers.size(); ++i) {
      for (const TensorSpec& t : theirs.tensors()) {
        if (t.tied_copy) continue;
        copy_from_slice(t, part + i * theirs.count() + t.offset,
                        whole[i].data() + whole_layout.find(t.name)->offset);
      }
    }
  }
  return whole;
}

}  // namespace triad::parallel
