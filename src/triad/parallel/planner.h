#pragma once
// The Tier I layout planner (paper §3.2.1): for a model, a global batch and W ranks, every layout —
// data × tensor × pipeline degrees, micro-batches, pipeline schedule, ZeRO-1, the data-parallel codec — with
// its predicted peak memory per rank and step time, fastest first among those within a memory cap
// (`triad plan`). Pure: it prices a measured topology (comm/topology.h) with the constants of CostModel and
// makes no MPI call.
//
// Memory of a rank, in bytes, on the pipeline stage whose ranks hold the most (every tensor rank of a stage
// holds the same counts); P = ParameterLayout(config, its shard).count(), mb = batch / (dp · m) sequences:
//
//   weights + gradients   8 P
//   AdamW moments         8 P, or 8 ceil(P / dp) under ZeRO-1; 8-bit states 2 + 8 / 2048 per parameter
//   activations           4 (k · kept(mb) + scratch(mb)): kept = the units a micro-batch keeps from its
//                         forward to its backward (model/dataflow.h: every unit of the stage's blocks, its
//                         input, and on the last stage lnf, logits and loss), at the tensor slice;
//                         k = max_in_flight(stage_ops(schedule, stage, p, m)) (1 without pipelining); the
//                         backward's scratch once (one backward runs at a time)
//   pipeline buffers      4 mb T C · (m per direction the stage sends + 1 receive + 1 input gradient on
//                         later stages): train/pipeline_batches keeps each micro-batch's send until the
//                         step ends
//   codec buffers         per parameter: fp16 2 + 2 + 4 / dp (all-to-all out and in, the owned mean);
//                         ZeRO-1 none 4 + 4 (all-to-all out and in), fp16 2 + 2 + 4 / dp + 2 (the shard
//                         before the update, the gathered updates); none without ZeRO-1: 0 (in place)
//   MPI scratch           the largest all-reduce the rank starts, in bytes: Open MPI's non-blocking
//                         all-reduce (libnbc) allocates a buffer of the collective's size, on top of the
//                         arena's held peak. The tied embedding's slice on the end stages of a pipeline,
//                         the largest gradient bucket with dp > 1 and none without ZeRO-1, the tensor
//                         group's 4 mb T C
//   process               CostModel::process_bytes (binary, libraries, MPI, the data)
//
// Step time. Per micro-batch, stage s takes u_s = compute_s + tensor_s + pipeline_s:
//
//   compute_s     matrix FLOPs / (GFLOP/s of its slowest rank · gemm_efficiency) + activation elements ·
//                 elementwise_ns. FLOPs: 6 tokens · (its blocks' 4 A C + 2 F C weights, 12 C² at the
//                 default shape, + on the last stage the V C LM head) / tp, + attention's 12 mb T² A per
//                 block / tp (× the causal tiles' share); A = attention_width(), F = mlp()
//   tensor_s      ring all-reduces over its tensor group (2 (n-1)/n · bytes / bw + 2 (n-1) · latency, on
//                 the ring's slowest link): 4 of mb T C floats per block (2 forward, 2 backward), 1 for
//                 the vocabulary-parallel embedding (first stage), on the last stage 1 for the LM head's
//                 backward and the cross-entropy's max (mb T) and sums (2 mb T)
//   pipeline_s    receiving mb T C floats from each neighbour (bytes / bw + latency): activations from
//                 s-1, gradients from s+1
//
// The pipeline runs at the pace of the slowest stage s*: m · u_s* of work and a bubble of (p-1) · u_s*
// (so bubble / (work + bubble) = bubble_fraction(p, m), pipeline_schedule.h). After the last backward, on
// each stage: the data-parallel reduction's exposed part (buckets priced by comm::predict with the codec;
// the buckets overlap the last micro-batch's backward, so what is exposed is the larger of the last bucket's
// time — it is ready only when the backward ends — and the total less that backward), the tied embedding's
// all-reduce between the end stages, ZeRO-1's parameter all-gather, and AdamW over the owned parameters.
// The slowest stage's sum is the step's tail.
//
// Where the topology has the model's step timed alone (parallel/contention.h), each rank's compute and
// update are scaled by that step over its prediction: the constants below corrected for this machine and
// model.
//
// Ranks that share cores (more ranks on a node than CPUs, parallel/shared_cores.h): the parts above with
// every rank at a core's speed, and the step simulated with the ranks taking turns; the difference is
// `taking_turns`. Ranks of a node that compute at once slow each other down (parallel/contention.h): where
// the topology has the model timed alone and at once, the step is simulated again with that slowdown for
// as many of a node's ranks as work at each moment; the difference is `at_once`.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/comm/codec_spec.h"
#include "triad/comm/topology.h"
#include "triad/model/config.h"
#include "triad/parallel/layout.h"
#include "triad/parallel/pipeline_schedule.h"

namespace triad::parallel {

// The measured constants of the cost model. Each was fitted once, on this machine (2 cores, Open MPI over
// shared memory, 2026-12-04), from runs that are none of the layouts the planner ranks; the validation
// against multi-rank runs is docs/results/2026-12-04-layout-planner.md.
struct CostModel {
  // One step = matrix FLOPs / (probe's SGEMM GFLOP/s · gemm_efficiency) + activation elements ·
  // elementwise_ns + parameters · adamw_ns + step_overhead_ms. Least squares (relative error) over the
  // median step_ms of six single-process runs (`mpirun -np 1 triad train --threads 1`, 10 steps): the
  // fixture model L2 d32 and bench/train_vs_torch's A (L4 d256 T256) and B (L6 d384 T256), each at batch 8
  // and 2, against `mpirun -np 1 triad probe`'s 92.8 GFLOP/s; every run within 4 % of the fit.
  // elementwise_ns covers LayerNorm, softmax, GELU, residuals, the backward's fills; adamw_ns the
  // update, the gradient norm and zeroing the gradients.
  double gemm_efficiency = 0.925;
  double elementwise_ns = 0.75;
  double adamw_ns = 3.97;
  double step_overhead_ms = 0.031;
  // Without --topology: a link's bandwidth and one-way latency. The bandwidth is what Open MPI's all-reduce
  // reaches here, 2 ranks over shared memory at 1-4 MiB (`mpirun -np 2 build/bench_comm_collectives
  // --paths mpi`: 3.36-3.46 GB/s of bytes sent per rank); `triad probe` measures 4.9-7.8 GB/s each way
  // here (2026-12-05), more than the collectives reach. The latency and fp16's encode + decode per float
  // are the probe's (2 ranks).
  double link_bandwidth_MBps = 3400;
  double link_latency_us = 0.6;
  double fp16_ns_per_float = 0.3;
  // Resident memory of a rank besides what the formulas count (binary, libraries, Open MPI, the data):
  // the largest of peak_rss_bytes less the counted bytes over the six runs above, measured again
  // 2026-12-05 (`bench/plan_vs_runs --calibrate`): 35.7 MB. (It was 70.7 MB while the binary linked pagmo,
  // which is now a module only `triad search` loads: src/triad/search/pagmo_module.h.)
  double process_bytes = 35.7e6;
  // The backward's share of a micro-batch's compute: 4 of the 6 FLOPs per weight and token.
  double backward_share = 2.0 / 3.0;

  nlohmann::json to_json() const;
};

// One layout the planner considers.
struct LayoutChoice {
  Layout layout;
  int micro_batches = 1;  // --grad-accum: the pipeline's micro-batches, or accumulation without one
  PipelineSchedule schedule = PipelineSchedule::kOneFOneB;
  bool zero1 = false;
  comm::CodecKind codec = comm::CodecKind::kNone;  // none or fp16 (data parallel only)
  std::vector<int> stage_first;                    // split_blocks' form: first block per stage, then L

  // "dp2·tp1·pp2 m4 1f1b zero1 none" (schedule only with stages, ZeRO-1 and codec only with dp > 1; a
  // split that is not split_blocks' even one is shown as [5,1]).
  std::string name() const;
  // The `triad train` flags that run it (besides --batch and the model's), the stage split included.
  std::string train_flags() const;
  int stage_blocks(int stage) const { return stage_first[stage + 1] - stage_first[stage]; }
};

struct PlanRequest {
  GptConfig model;
  int batch = 0;  // global batch, sequences
  int ranks = 0;
  double memory_cap = 0;  // bytes per rank
  double bucket_mb = 4;   // --bucket-mb of the runs
  int max_micro_batches = 16;
  bool optimizer_8bit = false;  // --optimizer-states 8bit
};

struct MemoryPrediction {
  double weights = 0, optimizer = 0, activations = 0, pipeline_buffers = 0, codec_buffers = 0,
         mpi_scratch = 0, process = 0;
  int stage = 0;                    // the stage whose ranks hold the most (the parts above are its)
  std::vector<double> stage_total;  // every stage's total
  double total() const {
    return weights + optimizer + activations + pipeline_buffers + codec_buffers + mpi_scratch + process;
  }
};

struct TimePrediction {
  // Seconds of one step: the slowest stage's m micro-batches (compute, tensor and pipeline communication),
  // the bubble, and the tail after the backward (data-parallel and tied-embedding communication, ZeRO-1's
  // gather; AdamW and the fixed cost in `optimizer`).
  double compute = 0, tensor = 0, pipeline = 0, bubble = 0, data = 0, optimizer = 0;
  // Ranks that share cores (parallel/shared_cores.h): the parts above are at a core per rank; this is what
  // taking turns adds, the simulated step less their sum (0 when every rank has a core).
  double taking_turns = 0;
  // What ranks of a node computing at once cost each other (0 without a timing of the model at once).
  double at_once = 0;
  int pace_stage = 0;  // s*, the slowest stage
  double comm() const { return tensor + pipeline + data; }
  double step() const {
    return compute + tensor + pipeline + bubble + data + optimizer + taking_turns + at_once;
  }
};

struct PlannedLayout {
  LayoutChoice choice;
  MemoryPrediction memory;
  TimePrediction time;
  bool fits = false;
};

// Every layout of the request, in a fixed order, each with split_blocks' even split: dp · tp · pp = ranks,
// tp dividing the heads and the vocabulary, pp <= layers, dp dividing the batch; m each divisor of
// batch / dp up to max_micro_batches; both schedules when pp > 1; ZeRO-1 off and on and codecs none and
// fp16 when dp > 1. Usage errors when the request itself is wrong.
std::vector<LayoutChoice> enumerate_layouts(const PlanRequest& request);

// Activation elements of one micro-batch of `B` sequences on a stage of `blocks` blocks (with the LM head
// on the last stage) at tensor degree `tensor`: those kept from the forward to the backward, and the
// backward's scratch.
struct StageActivations {
  size_t kept = 0, scratch = 0;
};
StageActivations stage_activations(const GptConfig& config, int B, int T, int blocks, bool head, int tensor);

MemoryPrediction predict_memory(const PlanRequest& request, const LayoutChoice& choice,
                                const CostModel& cost);
TimePrediction predict_time(const PlanRequest& request, const LayoutChoice& choice,
                            const comm::Topology& topology, const CostModel& cost);

// Every layout priced, each pipeline with the stage split that makes its slowest stage fastest (the last
// stage also runs the LM head); ranked: those within the cap fastest first, then the others by memory.
std::vector<PlannedLayout> plan_layouts(const PlanRequest& request, const comm::Topology& topology,
                                        const CostModel& cost);

// `world` ranks of `gflops` each, every link as the cost model's defaults: the topology without --topology.
comm::Topology uniform_topology(int world, double gflops, const CostModel& cost);

nlohmann::json to_json(const PlannedLayout& planned);

}  // namespace triad::parallel
