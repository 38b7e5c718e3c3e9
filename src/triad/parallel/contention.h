#pragma once
// What the ranks of one node cost each other while they compute at once, beyond taking turns on shared
// cores: memory bandwidth, the last-level cache, and where ranks outnumber cores the switches between them.
// Kernels on their own do not show it (SGEMM and GELU at config B's shapes, two processes at once: no
// slowdown); a model's step does, and by how much depends on the model (2026-12-06, four processes on two
// cores against one alone: config B at a dp4 rank's batch 2.33-2.39x, a 2-block d256 model 2.09-2.16x,
// where sharing alone would give 2x). So it is measured on the model being planned:
//
//   measured  the model's training step (forward, backward, AdamW) on one micro-batch, in rounds: by each
//             node's first rank while the others wait, then by every rank at once, a step in the middle
//             of three (`triad probe` given a model, `train --layout auto`)
//   factor    per rank: at once / (its node's alone x max(1, ranks on its CPUs / CPUs)); a node's is the
//             median of its ranks'
//   priced    in the planner's simulated step (shared_cores.h), a working rank of a node where k of its
//             n ranks work runs 1 + (factor - 1)(k - 1)/(n - 1) times slower, on top of its share of the
//             CPUs; so a pipeline stage waiting in the bubble relieves the others.
//
// The step alone also corrects the cost model's constants for this machine and model (step_scales).

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/comm/topology.h"
#include "triad/model/config.h"

namespace triad::parallel {

// What a topology's micro-step timings are of: the model (as GptConfig::to_json) and the micro-batch.
nlohmann::json micro_step_subject(const GptConfig& model, int micro_batch);

// Collective. Times `model`'s training step (forward, backward, AdamW) on `micro_batch` sequences as above,
// in `rounds` of one step alone and three at once, the middle one timed (after an untimed one of each);
// each kind the median of its rounds. Records it in `topology` (its ranks' placement must be filled in):
// micro_step_of and every rank's micro_step_alone_ms and micro_step_at_once_ms. A model larger than
// `memory_per_rank` is timed with as many of its first blocks as fit.
void measure_micro_steps(comm::Context& context, const GptConfig& model, int micro_batch,
                         double memory_per_rank, comm::Topology& topology, int rounds = 3);

struct NodeContention {
  std::string host;
  std::vector<int> ranks;
  double factor = 1;
};

// Why the topology has no usable timing of `model` (none, another model's, a rank without one); empty when
// it has one.
std::string untimed(const comm::Topology& topology, const GptConfig& model);

// The nodes of two or more ranks whose slowdown at once is known for `model`: none when untimed.
std::vector<NodeContention> node_contention(const comm::Topology& topology, const GptConfig& model);

struct CostModel;

// Per rank: the timed model's step alone on its node over the planner's prediction of that step at the
// rank's sgemm_gflops (a core's speed, where ranks share cores: at_a_core_each); 1 for every rank without a
// timing of `model`. CostModel's constants were fitted on one machine on one day (parallel/planner.h); this
// is how far they are from this one today for this model (config B, 2026-12-06: 1.03-1.15), and the
// planner scales each rank's compute and update by it.
std::vector<double> step_scales(const comm::Topology& topology, const GptConfig& model,
                                const CostModel& cost);

// Per node of a topology with a timing of `model`: "HOST: ranks 0, 1: the model's step alone 1.08x the
// cost model's, all at once 1.05x slower" (none without one), and what follows it wherever a prediction
// is shown.
std::vector<std::string> timing_lines(const comm::Topology& topology, const GptConfig& model,
                                      const CostModel& cost);
inline constexpr const char* kTimingNote =
    "the step times scale compute by the first and simulate the second for as many of the node's ranks as "
    "work at each moment (docs/parallel.md, 'Ranks computing at once')";

}  // namespace triad::parallel
