#include "triad/train/layout_choice.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "triad/comm/collectives.h"
#include "triad/comm/placement.h"
#include "triad/comm/topology.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/core/memory.h"
#include "triad/parallel/contention.h"
#include "triad/parallel/shared_cores.h"
#include "triad/train/memory_check.h"

namespace triad {

namespace {

// Whether the trainer takes these options (TrainOptions::validate).
bool valid(const TrainOptions& o, int world) {
  try {
    o.validate(world);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// --memory-limit's verdict on a layout's options (fit_training_memory, which the trainer applies to the
// layout chosen): kept as given, fitted only by the 8-bit states, fused update or remat budget it chooses
// (which the planner does not price), or refused (why in *refusal).
enum class LimitFit { kAsGiven, kRefitted, kRefused };

LimitFit fit_memory_limit(const TrainOptions& o, int world, bool resumed, std::string* refusal) {
  if (o.memory_limit.empty()) return LimitFit::kAsGiven;
  try {
    const TrainOptions fitted = fit_training_memory(o, world, resumed, false);
    const bool same = fitted.optimizer_states == o.optimizer_states &&
                      fitted.fused_update == o.fused_update && fitted.remat.budget == o.remat.budget;
    return same ? LimitFit::kAsGiven : LimitFit::kRefitted;
  } catch (const Error& e) {
    *refusal = e.what();
    return LimitFit::kRefused;
  }
}

// The given options with the flags that run `c`.
TrainOptions options_for(const TrainOptions& given, const parallel::LayoutChoice& c) {
  TrainOptions o = given;
  o.tensor_parallel = c.layout.tensor;
  o.pipeline_parallel = c.layout.pipeline;
  o.grad_accum = c.micro_batches;
  o.pipeline_schedule = parallel::schedule_name(c.schedule);
  std::vector<int> counts;
  for (int s = 0; s < c.layout.pipeline; ++s) counts.push_back(c.stage_blocks(s));
  o.pipeline_split = c.layout.pipeline > 1 ? fmt::format("{}", fmt::join(counts, ",")) : "";
  o.comm.zero = c.zero1 ? 1 : 0;
  o.comm.grad_compression = c.codec == comm::CodecKind::kFp16 ? "fp16" : "none";
  return o;
}

bool same_shape(const parallel::Layout& a, const parallel::Layout& b) {
  return a.data == b.data && a.tensor == b.tensor && a.pipeline == b.pipeline;
}

// Whether a trial of one tells about the other: the same shape, and under pipelines the same micro-batches
// and split (ZeRO-1, the codec and the schedule aside).
bool same_trial(const parallel::LayoutChoice& a, const parallel::LayoutChoice& b) {
  if (!same_shape(a.layout, b.layout)) return false;
  return a.layout.pipeline == 1 || (a.micro_batches == b.micro_batches && a.stage_first == b.stage_first);
}

}  // namespace

LayoutRanking rank_layouts(comm::Context& context, const TrainOptions& options, bool resumed) {
  const parallel::CostModel cost;
  parallel::PlanRequest request{
      .model = options.model,
      .batch = options.batch,
      .ranks = context.world(),
      .memory_cap = static_cast<double>(physical_memory_bytes()) / context.node_size(),
      .bucket_mb = options.comm.bucket_mb,
      .optimizer_8bit = options.optimizer_states == "8bit"};
  LayoutRanking ranking;
  ranking.memory_cap = request.memory_cap;
  comm::Topology topology;
  if (!options.comm.topology.empty()) {
    topology = comm::load_topology(options.comm.topology);
    if (topology.world != context.world()) {
      fail_usage("--topology {} describes {} ranks; the job has {}", options.comm.topology, topology.world,
                 context.world());
    }
    ranking.speed = "--topology " + options.comm.topology;
  } else {
    // One measurement, rank 0's while the others wait (a core's speed), so that every rank plans from the
    // same numbers; and where the ranks run, so that ranks sharing cores are priced as taking turns.
    double gflops = context.rank() == 0 ? comm::measure_sgemm_gflops(512) : 0;
    uint64_t bits = 0;
    std::memcpy(&bits, &gflops, sizeof bits);
    comm::broadcast_from_root(context, &bits, 1, "sending the measured GFLOP/s for --layout auto");
    std::memcpy(&gflops, &bits, sizeof bits);
    topology = parallel::uniform_topology(context.world(), gflops, cost);
    comm::place_ranks(context, topology);
    for (comm::RankInfo& rank : topology.ranks) rank.sgemm_alone_gflops = gflops;
    ranking.speed = fmt::format("{:.1f} GFLOP/s per core measured on rank 0", gflops);
  }
  for (const std::string& node : parallel::shared_core_nodes(topology)) {
    ranking.speed += fmt::format("; {}: {}", node, parallel::kSharedCoresNote);
  }
  // The model's step alone (how far the cost model's constants are from this machine) and what ranks
  // computing at once on a node cost each other: the topology's timing of this model, or timed now (every
  // rank reads the same file, so all of them measure or none).
  if (!parallel::untimed(topology, options.model).empty() && context.world() > 1) {
    if (context.rank() == 0) {
      log_info(
          "--layout auto: timing the model's step alone and with every rank at once (a few steps; "
          "'triad probe' with the model's flags and --batch records it in a topology)");
    }
    parallel::measure_micro_steps(context, options.model, std::max(1, options.batch / context.world()),
                                  request.memory_cap, topology);
  }
  for (const std::string& node : parallel::timing_lines(topology, options.model, cost)) {
    ranking.speed += fmt::format("; {}: {}", node, parallel::kTimingNote);
  }
  const std::vector<parallel::PlannedLayout> planned = parallel::plan_layouts(request, topology, cost);
  ranking.priced = planned.size();
  // Layouts these options refuse (TrainOptions::validate: DP-SGD, 8-bit states, a teacher or a codec with
  // per-rank state under model parallelism) are left out, so that no trial nor the run meets a refusal.
  // A resumed run keeps what its optimizer state was built for: the micro-batches, ZeRO-1 and the codec.
  // --memory-limit: the layouts that fit it as planned come first; only when none does, those it fits by
  // 8-bit states or a remat budget (the planner's times leave their cost out).
  const parallel::PlannedLayout* smallest = nullptr;
  std::vector<LayoutCandidate> refitted;
  std::string refusal;  // --memory-limit's, of the smallest layout it refused
  double refused_least = std::numeric_limits<double>::infinity();
  for (const parallel::PlannedLayout& p : planned) {
    const TrainOptions o = options_for(options, p.choice);
    if (!valid(o, context.world())) continue;
    if (resumed && (o.grad_accum != options.grad_accum || o.comm.zero != options.comm.zero ||
                    o.comm.grad_compression != options.comm.grad_compression))
      continue;
    if (!smallest || p.memory.total() < smallest->memory.total()) smallest = &p;
    if (!p.fits) continue;
    std::string why;
    switch (fit_memory_limit(o, context.world(), resumed, &why)) {
      case LimitFit::kAsGiven:
        ranking.fitting.push_back({.planned = p, .options = o, .trial_ms = {}});
        break;
      case LimitFit::kRefitted:
        refitted.push_back({.planned = p, .options = o, .trial_ms = {}});
        break;
      case LimitFit::kRefused:
        if (p.memory.total() < refused_least)
          refused_least = p.memory.total(), refusal = p.choice.name() + ": " + why;
    }
  }
  if (ranking.fitting.empty() && !refitted.empty()) {
    ranking.fitting = std::move(refitted);
    ranking.memory_note = fmt::format(
        "; no layout fits --memory-limit {} as planned: this one with its 8-bit states or remat budget, "
        "whose cost the prediction leaves out",
        options.memory_limit);
  } else if (!options.memory_limit.empty()) {
    ranking.memory_note =
        fmt::format("; every layout checked against --memory-limit {}", options.memory_limit);
  }
  if (ranking.fitting.empty() && !refusal.empty()) {
    fail_usage(
        "--layout auto: no layout of {} ranks fits --memory-limit; the smallest that fits the node, {}",
        context.world(), refusal);
  }
  if (ranking.fitting.empty()) {
    if (!smallest && resumed) {
      fail_usage(
          "--layout auto: no layout of {} ranks keeps this run's --grad-accum {}, --zero {} and "
          "--grad-compression {} (a resumed run keeps them); give --tensor-parallel, --pipeline-parallel "
          "and --pipeline-split instead",
          context.world(), options.grad_accum, options.comm.zero, options.comm.grad_compression);
    }
    if (!smallest) fail_usage("--layout auto: no layout of {} ranks runs these options", context.world());
    fail_usage("--layout auto: no layout of {} ranks fits {} per rank; the smallest needs {} ({})",
               context.world(), format_bytes(static_cast<size_t>(request.memory_cap)),
               format_bytes(static_cast<size_t>(smallest->memory.total())), smallest->choice.name());
  }
  return ranking;
}

std::vector<LayoutCandidate> trial_candidates(const std::vector<LayoutCandidate>& fitting, int trials) {
  std::vector<LayoutCandidate> picked;
  for (const LayoutCandidate& c : fitting) {
    if (static_cast<int>(picked.size()) >= trials) break;
    if (c.predicted_ms() > kTrialMargin * fitting.front().predicted_ms()) break;
    bool seen = false;
    for (const LayoutCandidate& p : picked) seen |= same_trial(p.planned.choice, c.planned.choice);
    if (!seen) picked.push_back(c);
  }
  return picked;
}

std::string describe_choice(const LayoutRanking& ranking, const LayoutCandidate& chosen) {
  const LayoutCandidate& first = ranking.fitting.front();
  std::string said = fmt::format(
      "--layout auto chose {} of {} layouts: predicted {} per step{}, {} per rank (of {}{}; {}); "
      "'triad plan' shows the ranking",
      chosen.name(), ranking.priced, format_ms(chosen.predicted_ms()),
      chosen.measured_ms() > 0 ? ", measured " + format_ms(chosen.measured_ms()) : std::string(),
      format_bytes(static_cast<size_t>(chosen.planned.memory.total())),
      format_bytes(static_cast<size_t>(ranking.memory_cap)), ranking.memory_note, ranking.speed);
  if (chosen.measured_ms() > 0) return said;
  // A runner-up of another shape predicted within the model's error: trials would settle it.
  for (const LayoutCandidate& c : ranking.fitting) {
    if (same_shape(c.planned.choice.layout, first.planned.choice.layout)) continue;
    if (c.predicted_ms() <= 1.15 * first.predicted_ms()) {
      said += fmt::format(
          ". {} is predicted within {:.0f} %: --layout-trials 2 or more times both and trains the faster",
          c.name(), 100 * (c.predicted_ms() / first.predicted_ms() - 1));
    }
    break;
  }
  return said;
}

}  // namespace triad
