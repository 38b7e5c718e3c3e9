#include "triad/train/layout_choice.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "triad/comm/collectives.h"
#include "triad/comm/topology.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/memory.h"
#include "triad/parallel/planner.h"
#include "triad/parallel/shared_cores.h"

namespace triad {

TrainOptions choose_layout(comm::Context& context, const TrainOptions& options, std::string* said) {
  if (options.layout != "auto") return options;
  const parallel::CostModel cost;
  parallel::PlanRequest request{
      .model = options.model,
      .batch = options.batch,
      .ranks = context.world(),
      .memory_cap = static_cast<double>(physical_memory_bytes()) / context.node_size(),
      .bucket_mb = options.comm.bucket_mb,
      .optimizer_8bit = options.optimizer_states == "8bit"};
  comm::Topology topology;
  std::string speed;
  if (!options.comm.topology.empty()) {
    topology = comm::load_topology(options.comm.topology);
    if (topology.world != context.world()) {
      fail_usage("--topology {} describes {} ranks; the job has {}", options.comm.topology, topology.world,
                 context.world());
    }
    speed = "--topology " + options.comm.topology;
  } else {
    // One measurement, rank 0's, so that every rank plans from the same numbers.
    double gflops = context.rank() == 0 ? comm::measure_sgemm_gflops(512) : 0;
    uint64_t bits = 0;
    std::memcpy(&bits, &gflops, sizeof bits);
    comm::broadcast_from_root(context, &bits, 1, "sending the measured GFLOP/s for --layout auto");
    std::memcpy(&gflops, &bits, sizeof bits);
    topology = parallel::uniform_topology(context.world(), gflops, cost);
    speed = fmt::format("{:.1f} GFLOP/s per rank measured on rank 0", gflops);
  }
  const std::vector<parallel::PlannedLayout> ranked = parallel::plan_layouts(request, topology, cost);
  // 8-bit optimizer states run data parallel only (TrainOptions::validate).
  auto usable = std::find_if(ranked.begin(), ranked.end(), [&](const parallel::PlannedLayout& p) {
    return !request.optimizer_8bit || p.choice.layout.tensor * p.choice.layout.pipeline == 1;
  });
  if (usable == ranked.end()) usable = ranked.begin();
  const parallel::PlannedLayout& best = *usable;
  if (!best.fits) {
    fail_usage("--layout auto: no layout of {} ranks fits {} per rank; the smallest needs {} ({})",
               context.world(), format_bytes(static_cast<size_t>(request.memory_cap)),
               format_bytes(static_cast<size_t>(best.memory.total())), best.choice.name());
  }
  const parallel::LayoutChoice& c = best.choice;
  TrainOptions chosen = options;
  chosen.tensor_parallel = c.layout.tensor;
  chosen.pipeline_parallel = c.layout.pipeline;
  chosen.grad_accum = c.micro_batches;
  chosen.pipeline_schedule = parallel::schedule_name(c.schedule);
  std::vector<int> counts;
  for (int s = 0; s < c.layout.pipeline; ++s) counts.push_back(c.stage_blocks(s));
  chosen.pipeline_split = c.layout.pipeline > 1 ? fmt::format("{}", fmt::join(counts, ",")) : "";
  chosen.comm.zero = c.zero1 ? 1 : 0;
  chosen.comm.grad_compression = c.codec == comm::CodecKind::kFp16 ? "fp16" : "none";
  *said = fmt::format(
      "--layout auto chose {} of {} layouts: predicted {:.0f} ms per step, {} per rank (of {}; {}); 'triad "
      "plan' shows the ranking",
      c.name(), ranked.size(), best.time.step() * 1e3, format_bytes(static_cast<size_t>(best.memory.total())),
      format_bytes(static_cast<size_t>(request.memory_cap)), speed);
  for (const std::string& node : parallel::shared_core_nodes(topology)) {
    *said += fmt::format("; {}: {}", node, parallel::kSharedCoresNote);
  }
  return chosen;
}

}  // namespace triad
