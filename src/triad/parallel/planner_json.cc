// The planner's types as `triad plan --json` prints them (parallel/planner.h).
#include <cmath>

#include "triad/parallel/planner.h"

namespace triad::parallel {

namespace {

std::string codec_name(comm::CodecKind kind) {
  comm::CodecSpec spec;
  spec.kind = kind;
  return spec.name();
}

}  // namespace

nlohmann::json CostModel::to_json() const {
  return {{"gemm_efficiency", gemm_efficiency},
          {"elementwise_ns", elementwise_ns},
          {"adamw_ns", adamw_ns},
          {"step_overhead_ms", step_overhead_ms},
          {"link_bandwidth_MBps", link_bandwidth_MBps},
          {"link_latency_us", link_latency_us},
          {"fp16_ns_per_float", fp16_ns_per_float},
          {"process_bytes", process_bytes},
          {"backward_share", backward_share}};
}

nlohmann::json to_json(const PlannedLayout& planned) {
  const LayoutChoice& c = planned.choice;
  const MemoryPrediction& m = planned.memory;
  const TimePrediction& t = planned.time;
  std::vector<int> split;
  for (int s = 0; s < c.layout.pipeline; ++s) split.push_back(c.stage_blocks(s));
  auto ms = [](double seconds) { return std::round(seconds * 1e6) / 1e3; };
  std::vector<long long> stage_bytes;
  for (double bytes : m.stage_total) stage_bytes.push_back(std::llround(bytes));
  return {{"layout", c.name()},
          {"data", c.layout.data},
          {"tensor", c.layout.tensor},
          {"pipeline", c.layout.pipeline},
          {"micro_batches", c.micro_batches},
          {"schedule", schedule_name(c.schedule)},
          {"zero", c.zero1 ? 1 : 0},
          {"codec", codec_name(c.codec)},
          {"pipeline_split", split},
          {"fits", planned.fits},
          {"step_ms", ms(t.step())},
          {"compute_ms", ms(t.compute)},
          {"comm_ms", ms(t.comm())},
          {"tensor_ms", ms(t.tensor)},
          {"pipeline_ms", ms(t.pipeline)},
          {"data_ms", ms(t.data)},
          {"bubble_ms", ms(t.bubble)},
          {"optimizer_ms", ms(t.optimizer)},
          {"taking_turns_ms", ms(t.taking_turns)},
          {"at_once_ms", ms(t.at_once)},
          {"pace_stage", t.pace_stage},
          {"peak_bytes", std::llround(m.total())},
          {"memory",
           {{"stage", m.stage},
            {"weights", std::llround(m.weights)},
            {"optimizer", std::llround(m.optimizer)},
            {"activations", std::llround(m.activations)},
            {"pipeline_buffers", std::llround(m.pipeline_buffers)},
            {"codec_buffers", std::llround(m.codec_buffers)},
            {"mpi_scratch", std::llround(m.mpi_scratch)},
            {"process", std::llround(m.process)}}},
          {"stage_peak_bytes", stage_bytes},
          {"train_flags", c.train_flags()}};
}

}  // namespace triad::parallel
