#pragma once
// Ranks that take turns on shared cores: which ranks of a probed topology share CPUs, and the time of a
// step when they do, by simulating the step's schedule with every CPU shared fairly among the ranks that
// are working at that moment (processor sharing: k working ranks on c CPUs each run at min(1, c / k) of a
// core's speed).
//
// Why a simulation and not a factor: ranks that share cores are not always all working. A pipeline's stage
// waiting for its neighbour (the bubble) gives its core to the others, so 4 stages on 2 cores take far
// less than twice the 4-core step (measured 2026-12-06: the per-core model predicted 1.49–2.20× the
// measured pp4 step), while data-parallel ranks that all compute at once do take about n / c times longer.
//
// The probe times SGEMM on every rank at once (comm/topology.h), so a rank that shares c CPUs with n - 1
// others reads about c / n of a core, and again with the other ranks of its node waiting, a core's speed
// (sgemm_alone_gflops). The simulation gives each op a core's speed and lets the sharing slow it down only
// while the others work too.

#include <string>
#include <vector>

#include "triad/comm/topology.h"
#include "triad/parallel/contention.h"
#include "triad/parallel/pipeline_schedule.h"
#include "triad/parallel/planner.h"

namespace triad::parallel {

// Ranks of one node that run on the same CPUs, more of them than CPUs.
struct CpuShare {
  std::string host;
  std::vector<int> ranks;
  int cpus = 0;
};

// The groups of ranks that outnumber the CPUs they may run on. Per node, ranks with the same affinity form a
// group when the node's distinct affinities do not overlap (two ranks bound to CPU 1, one to CPU 0: the two
// share); otherwise the node's ranks form one group over the union of their CPUs. Ranks whose CPUs are not
// known (an older topology file) are left out.
std::vector<CpuShare> cpu_shares(const comm::Topology& topology);

// "HOST: ranks 0, 1, 2, 3 share 2 CPUs".
std::string describe(const CpuShare& share);
// One line per group (describe()), and what follows it wherever a prediction is shown.
std::vector<std::string> shared_core_nodes(const comm::Topology& topology);
inline constexpr const char* kSharedCoresNote =
    "they take turns: the step times simulate the schedule with every working rank's share of the CPUs "
    "(measured: docs/parallel.md, 'Ranks that share cores')";

// The topology with every shared rank's SGEMM rate at a core's speed: the median over its group of
// sgemm_alone_gflops, or for a file without it of sgemm_gflops × ranks / cpus. Ranks on the same CPUs have
// the same cores, so each gets the group's median. (Every rank at once, the readings vary with the
// scheduler's luck within each 0.1 s window: four ranks on two cores read 49, 53, 104 and 69 GFLOP/s beside
// one rank alone's 103 on 2026-12-06, so the fallback overestimates.)
comm::Topology at_a_core_each(const comm::Topology& topology, const std::vector<CpuShare>& shares);

// A pipeline stage (or the one stage without pipelining) for the simulation, in seconds at a core's speed.
struct SimulatedStage {
  double forward = 0, backward = 0;  // one micro-batch's
  double tail = 0;                   // after its last backward: gradient reduction, optimizer
  std::vector<int> ranks;            // its ranks; they work in lockstep (tensor and data groups)
};

// Seconds from the first forward to the last stage's tail: the stages run stage_ops(schedule, s, p, m),
// micro-batch i's forward on stage s after stage s-1's, its backward after stage s+1's (on the last stage
// after its own forward), then the tail; a stage runs at the speed of its slowest rank, and a rank of a
// CpuShare whose k working ranks outnumber its c CPUs at c / k of a core, and on a node of `contention`
// where k of its n ranks work, 1 + (factor - 1)(k - 1)/(n - 1) times slower still (contention.h). With
// `busy`, each stage's seconds with an op running (what the trainer's pipeline_stage_busy_ms measures).
double simulate_step(PipelineSchedule schedule, int micro_batches, const std::vector<SimulatedStage>& stages,
                     const std::vector<CpuShare>& shares, const std::vector<NodeContention>& contention = {},
                     std::vector<double>* busy = nullptr);

// Pipeline stages balanced by measured speed (--balance, balance.h and train/stage_balance.h) where some
// take turns on shared CPUs: a stage's measured busy time is then not its own speed — giving it a block
// slows the stage it shares a core with — so splits are compared by simulating the step with each stage's
// work at a core's speed.
struct StageSharing {
  PipelineSchedule schedule = PipelineSchedule::kOneFOneB;
  int micro_batches = 1;
  double backward_share = CostModel{}.backward_share;  // of a micro-batch's compute
  std::vector<std::vector<int>> stage_ranks;           // each stage's world ranks
  std::vector<CpuShare> shares;                        // empty: no stages share CPUs
};

// The simulated step (simulate_step, no tail) at `blocks` per stage, stage s taking block_seconds[s] per
// block and micro-batch at a core's speed, its last stage `head_blocks` blocks more; each stage's busy
// seconds in `busy` when given.
double simulate_split(const StageSharing& sharing, const std::vector<int>& blocks,
                      const std::vector<double>& block_seconds, double head_blocks,
                      std::vector<double>* busy = nullptr);

// Per stage, the seconds per block and micro-batch at a core's speed whose simulation at `blocks` gives each
// stage its measured busy seconds: a stage that took turns measured longer than it runs alone. Starts from
// busy / (micro-batches × blocks), as if no stage shared, and scales each stage by measured / simulated
// until they agree to 1e-9 (or 100 rounds).
std::vector<double> block_seconds_at_a_core(const StageSharing& sharing, const std::vector<int>& blocks,
                                            double head_blocks, const std::vector<double>& busy);

// The split of the same blocks over the same stages, each at least one, whose simulated step is shortest,
// searched over every split when there are at most kMaxSimulatedSplits (4 stages of 40 blocks: 9,139);
// beyond, by moving one block at a time between neighbouring stages from `blocks` while that shortens the
// step. Splits within kSimulationTolerance of the shortest are ties the simulation cannot separate (it
// leaves out the point-to-point transfers and the update, 2-3 % of a step measured here): among them the
// one that moves the fewest blocks from `blocks` (it stays when it is one), then the shorter.
inline constexpr double kMaxSimulatedSplits = 20000;
inline constexpr double kSimulationTolerance = 0.02;
std::vector<int> fastest_simulated_split(const StageSharing& sharing, const std::vector<int>& blocks,
                                         const std::vector<double>& block_seconds, double head_blocks);

// Blocks that are on another stage in `b` than in `a` (two splits of the same blocks).
int blocks_moved(const std::vector<int>& a, const std::vector<int>& b);

}  // namespace triad::parallel
