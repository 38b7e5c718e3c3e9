#include "triad/parallel/contention.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "triad/comm/collectives.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/core/rng.h"
#include "triad/core/statistics.h"
#include "triad/model/gpt.h"
#include "triad/model/optimizer.h"
#include "triad/parallel/planner.h"
#include "triad/parallel/shared_cores.h"

namespace triad::parallel {

namespace {

// The most of the model's first blocks whose weights, gradients, AdamW moments and one micro-batch's
// activations take at most half of `memory` (the rest: the process, and headroom); 0 when not even one block
// does.
int blocks_that_fit(const GptConfig& model, int micro_batch, double memory) {
  for (int blocks = model.layers; blocks >= 1; --blocks) {
    GptConfig part = model;
    part.layers = blocks;
    const StageActivations act = stage_activations(part, micro_batch, part.seq_len, blocks, true, 1);
    const double bytes = 16 * part.parameter_count() + 4.0 * static_cast<double>(act.kept + act.scratch);
    if (bytes <= memory / 2) return blocks;
  }
  return 0;
}

// The model, an optimizer and one micro-batch: a training step without the data, the log or a peer.
struct MicroStep {
  Gpt<float> gpt;
  AdamW adamw;
  std::vector<int32_t> tokens;  // the micro-batch's inputs, then one more row: targets are inputs + T
  int micro_batch;

  MicroStep(const GptConfig& model, int micro_batch)
      : gpt(model),
        adamw(gpt.layout()),
        tokens(static_cast<size_t>(micro_batch + 1) * model.seq_len),
        micro_batch(micro_batch) {
    gpt.init_weights(1);
    Rng rng(7);
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(model.vocab));
  }
  // Seconds per step (forward, backward, AdamW), the mean of `steps`. Without the update (it streams 28
  // bytes per parameter) the steps at once hide most of what ranks cost each other: config B at batch 2,
  // four processes on two cores, forward + backward 1.01x their share alone, with AdamW 1.04-1.09x, whole
  // training processes 1.08-1.19x (2026-12-06).
  double seconds(int steps) {
    const int T = gpt.config().seq_len;
    const Clock::time_point start = Clock::now();
    for (int i = 0; i < steps; ++i) {
      gpt.zero_grads();
      gpt.forward(tokens.data(), tokens.data() + T, micro_batch, T);
      gpt.backward(1.0f);
      adamw.begin_step();
      adamw.update(gpt.params(), gpt.grads(), 1e-4f, AdamWConfig{});
    }
    return seconds_since(start) / steps;
  }
};

}  // namespace

nlohmann::json micro_step_subject(const GptConfig& model, int micro_batch) {
  return {{"model", model.to_json()}, {"micro_batch", micro_batch}};
}

void measure_micro_steps(comm::Context& context, const GptConfig& model, int micro_batch,
                         double memory_per_rank, comm::Topology& topology, int rounds) {
  const int world = context.world(), me = context.rank();
  GptConfig timed = model;
  timed.layers = blocks_that_fit(model, micro_batch, memory_per_rank);
  if (timed.layers == 0) {
    if (me == 0) {
      log_warn(
          "not timing the model alone and at once: one block at micro-batch {} does not fit a rank's {} MB",
          micro_batch, static_cast<long>(memory_per_rank / 1e6));
    }
    return;
  }
  MicroStep step(timed, micro_batch);

  // Rounds of one step alone, then three at once of which the middle one is timed, each kind the median of
  // its rounds. Measured apart, the two drifted with the machine by as much as ranks cost each other
  // (config B, 2 ranks: three steps alone then three at once read 0.95x one probe and 1.09x the next); a
  // single step at once read no slowdown (4 ranks: 1.01x, where the middle of three read 1.05-1.09x): its
  // ranks start in step, and those that finish first leave the CPUs to the rest.
  const std::string what = "timing the model alone and at once";
  const bool first_of_node = context.node_rank() == 0;
  comm::barrier(context, what);
  if (first_of_node) step.seconds(1);  // untimed: the first touch of every page (the others': at once)
  std::vector<double> alone_s, at_once_s;
  for (int round = 0; round < rounds; ++round) {
    comm::barrier(context, what);
    if (first_of_node) alone_s.push_back(step.seconds(1));
    comm::barrier(context, what);
    step.seconds(1);
    at_once_s.push_back(step.seconds(1));
    step.seconds(1);
  }
  const double alone = first_of_node ? median(alone_s) : 0, at_once = median(at_once_s);

  std::vector<double> all(2 * static_cast<size_t>(world), 0);
  all[2 * me] = alone;
  all[2 * me + 1] = at_once;
  comm::allreduce_sum(context, all.data(), static_cast<int>(all.size()), what);
  std::map<int, double> alone_of_node;  // measured by the node's first rank only
  for (int r = 0; r < world; ++r) {
    double& node = alone_of_node[topology.ranks[r].node];
    node = std::max(node, all[2 * r]);
  }
  topology.micro_step_of = micro_step_subject(timed, micro_batch);
  for (int r = 0; r < world; ++r) {
    topology.ranks[r].micro_step_alone_ms = alone_of_node[topology.ranks[r].node] * 1e3;
    topology.ranks[r].micro_step_at_once_ms = all[2 * r + 1] * 1e3;
  }
}

std::string untimed(const comm::Topology& topology, const GptConfig& model) {
  if (topology.micro_step_of.is_null()) return "the topology has no timing of a model alone and at once";
  // Timed with fewer blocks when the model did not fit: the same model otherwise.
  GptConfig timed = model;
  timed.layers = topology.micro_step_of["model"].value("layers", 0);
  if (topology.micro_step_of["model"] != timed.to_json() || timed.layers > model.layers) {
    return fmt::format("the topology's timing alone and at once is of another model ({})",
                       topology.micro_step_of["model"].dump());
  }
  for (int r = 0; r < topology.world; ++r) {
    const comm::RankInfo& info = topology.ranks[r];
    if (info.micro_step_alone_ms <= 0 || info.micro_step_at_once_ms <= 0)
      return fmt::format("rank {} has no micro_step_alone_ms and micro_step_at_once_ms", r);
  }
  return "";
}

std::vector<NodeContention> node_contention(const comm::Topology& topology, const GptConfig& model) {
  if (!untimed(topology, model).empty()) return {};
  std::map<int, double> turns;  // rank -> ranks per CPU of its group, where they outnumber the CPUs
  for (const CpuShare& share : cpu_shares(topology)) {
    for (int r : share.ranks) turns[r] = static_cast<double>(share.ranks.size()) / share.cpus;
  }
  std::map<int, NodeContention> nodes;
  std::map<int, std::vector<double>> factors;
  for (int r = 0; r < topology.world; ++r) {
    const comm::RankInfo& info = topology.ranks[r];
    const double share = turns.count(r) ? turns[r] : 1.0;
    factors[info.node].push_back(info.micro_step_at_once_ms / (info.micro_step_alone_ms * share));
    nodes[info.node].host = info.host;
    nodes[info.node].ranks.push_back(r);
  }
  std::vector<NodeContention> out;
  for (auto& [node, contention] : nodes) {
    if (contention.ranks.size() < 2) continue;
    contention.factor = median(factors[node]);
    out.push_back(std::move(contention));
  }
  return out;
}

std::vector<double> step_scales(const comm::Topology& topology, const GptConfig& model,
                                const CostModel& cost) {
  std::vector<double> scales(static_cast<size_t>(topology.world), 1.0);
  if (!untimed(topology, model).empty()) return scales;
  const PlanRequest alone{.model = GptConfig::from_json(topology.micro_step_of["model"], "micro_step_of"),
                          .batch = topology.micro_step_of["micro_batch"].get<int>(),
                          .ranks = 1,
                          .memory_cap = 1e300};
  const LayoutChoice one{.layout = {}, .stage_first = {0, alone.model.layers}};
  for (int r = 0; r < topology.world; ++r) {
    const comm::RankInfo& info = topology.ranks[r];
    // The speed the planner prices the rank at (where ranks share cores, stage_times passes a topology
    // with a core's speed each): the scale replaces it by the model's own.
    const double predicted =
        predict_time(alone, one, uniform_topology(1, info.sgemm_gflops, cost), cost).step();
    scales[r] = info.micro_step_alone_ms * 1e-3 / predicted;
  }
  return scales;
}

std::vector<std::string> timing_lines(const comm::Topology& topology, const GptConfig& model,
                                      const CostModel& cost) {
  if (!untimed(topology, model).empty()) return {};
  const std::vector<NodeContention> contention = node_contention(topology, model);
  const std::vector<double> scales = step_scales(at_a_core_each(topology, cpu_shares(topology)), model, cost);
  std::map<int, std::vector<int>> ranks_of_node;
  for (int r = 0; r < topology.world; ++r) ranks_of_node[topology.ranks[r].node].push_back(r);
  std::vector<std::string> lines;
  for (const auto& [node, ranks] : ranks_of_node) {
    std::vector<double> scale;
    for (int r : ranks) scale.push_back(scales[r]);
    std::string line = fmt::format("{}: rank{} {}: the model's step alone {:.2f}x the cost model's",
                                   topology.ranks[ranks[0]].host, ranks.size() > 1 ? "s" : "",
                                   fmt::join(ranks, ", "), median(scale));
    for (const NodeContention& n : contention) {
      if (n.ranks == ranks)
        line += fmt::format(", all at once {:.2f}x slower{}", n.factor, n.factor > 1 ? "" : " (priced as 1)");
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace triad::parallel
