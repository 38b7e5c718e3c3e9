#include "triad/parallel/planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "triad/comm/buckets.h"
#include "triad/core/error.h"
#include "triad/model/dataflow.h"
#include "triad/model/optimizer.h"
#include "triad/model/params.h"
#include "triad/parallel/contention.h"
#include "triad/parallel/model_parallel.h"
#include "triad/parallel/shared_cores.h"

namespace triad::parallel {

namespace {

constexpr double kFloat = sizeof(float);

// Per-micro-batch seconds of one stage, and what follows its last backward.
struct StageTime {
  double compute = 0, tensor = 0, pipeline = 0;
  double data = 0, optimizer = 0;  // the tail
  double busy() const { return compute + tensor + pipeline; }
};

comm::CodecSpec codec_spec(comm::CodecKind kind) {
  comm::CodecSpec spec;
  spec.kind = kind;
  return spec;
}

int micro_batch(const PlanRequest& r, const LayoutChoice& c) {
  return r.batch / (c.layout.data * c.micro_batches);
}

ParameterLayout stage_parameters(const PlanRequest& r, const LayoutChoice& c, int stage) {
  return ParameterLayout(r.model, shard_of(c.layout, {.pipeline = stage}, c.stage_first));
}

int pipeline_in_flight(const LayoutChoice& c, int stage) {
  if (c.layout.pipeline == 1) return 1;  // micro-batches one after another (gradient accumulation)
  return max_in_flight(stage_ops(c.schedule, stage, c.layout.pipeline, c.micro_batches));
}

// The ranks of one coordinate's group through `at`, in index order.
std::vector<int> group_through(const Layout& layout, Coordinates at, int Coordinates::*varying, int size) {
  std::vector<int> ranks;
  for (int i = 0; i < size; ++i) {
    at.*varying = i;
    ranks.push_back(rank_of(layout, at));
  }
  return ranks;
}

// The largest seconds_at(coordinates) over the ranks of pipeline stage `stage`: a group's time on the
// slowest of the stage's groups.
template <typename F>
double worst_over(const Layout& layout, int stage, F&& seconds_at) {
  double worst = 0;
  for (int d = 0; d < layout.data; ++d) {
    for (int t = 0; t < layout.tensor; ++t) {
      worst = std::max(worst, seconds_at(Coordinates{.data = d, .tensor = t, .pipeline = stage}));
    }
  }
  return worst;
}

double allreduce_seconds(const comm::Topology& topology, const std::vector<int>& group, double bytes) {
  const comm::Transfer t{comm::Collective::kAllreduce, static_cast<uint64_t>(bytes),
                         static_cast<int>(group.size())};
  return comm::price_transfers(topology, group, {t}).seconds;
}

double message_seconds(const comm::Topology& topology, int from, int to, double bytes) {
  return bytes / (topology.bandwidth_MBps[from][to] * 1e6) + topology.latency_us[from][to] * 1e-6;
}

// The slowest rank of the stage sets its pace (its tensor group waits for it at every sum).
double stage_gflops(const comm::Topology& topology, const Layout& layout, int stage) {
  double gflops = 1e30;
  for (int rank : stage_ranks(layout, stage))
    gflops = std::min(gflops, std::max(topology.ranks[rank].sgemm_gflops, 1e-3));
  return gflops;
}

// Matrix FLOPs of one micro-batch's forward and backward on a stage. Attention's products run over tiles of
// 64 queries and only the keys each tile sees (kernels/attention.h): of n = ceil(T / 64) tiles, (n + 1) / 2n
// of the full square.
double stage_flops(const GptConfig& m, int B, int T, int blocks, bool head, int tensor) {
  const double C = m.d_model, A = m.attention_width(), F = m.mlp(), tokens = double(B) * T;
  const double tiles = std::ceil(T / 64.0), causal = (tiles + 1) / (2 * tiles);
  // weights: q, k, v and the projection 4·A·C, the MLP 2·F·C (12 C² at today's shape)
  const double block = 6 * tokens * (4 * A * C + 2 * F * C) + 12.0 * B * T * double(T) * A * causal;
  return (blocks * block + (head ? 6 * tokens * m.vocab * C : 0)) / tensor;
}

std::vector<comm::GradRange> block_ranges(const ParameterLayout& layout) {
  std::vector<comm::GradRange> blocks;
  for (const ParamBlock& b : layout.blocks()) blocks.push_back({b.offset, b.count, {}});
  return blocks;
}

// Seconds of averaging one bucket of n floats over the data group: as the codec runs it, or under ZeRO-1
// as the shard exchange does (one all-to-all of the bucket encoded, comm/codec_shard.cc).
double bucket_seconds(const comm::Topology& topology, const std::vector<int>& group, const comm::GradRange& b,
                      const LayoutChoice& c) {
  const comm::CodecSpec spec = codec_spec(c.codec);
  if (!c.zero1) return comm::predict(topology, group, b, spec, comm::CodecOptions{}).seconds;
  const bool fp16 = c.codec == comm::CodecKind::kFp16;
  const comm::Transfer exchange{comm::Collective::kAlltoall, static_cast<uint64_t>(b.count * (fp16 ? 2 : 4)),
                                static_cast<int>(group.size())};
  double ns = 0;
  for (int r : group) ns = std::max(ns, fp16 ? topology.ranks[r].codec_ns_per_float.at("fp16") : 0.0);
  return comm::price_transfers(topology, group, {exchange}).seconds + ns * 1e-9 * b.count;
}

// `tail`: also what follows the last backward (not needed to compare stage splits). `scale`: the measured
// over the predicted step of the model alone on the stage's ranks (contention.h's step_scales).
StageTime stage_time(const PlanRequest& r, const LayoutChoice& c, const comm::Topology& topology,
                     const CostModel& cost, int s, bool tail, double scale) {
  const Layout& L = c.layout;
  const int p = L.pipeline, tp = L.tensor, mb = micro_batch(r, c), T = r.model.seq_len;
  const int blocks = c.stage_blocks(s);
  const bool head = s == p - 1;
  StageTime out;
  const StageActivations act = stage_activations(r.model, mb, T, blocks, head, tp);
  out.compute = scale * (stage_flops(r.model, mb, T, blocks, head, tp) /
                             (stage_gflops(topology, L, s) * 1e9 * cost.gemm_efficiency) +
                         static_cast<double>(act.kept + act.scratch) * cost.elementwise_ns * 1e-9);

  const double btc = kFloat * mb * T * r.model.d_model, bt = kFloat * mb * T;
  if (tp > 1) {
    const int sums = 4 * blocks + (s == 0 ? 1 : 0) + (head ? 1 : 0);
    out.tensor = worst_over(L, s, [&](Coordinates at) {
      const std::vector<int> group = group_through(L, at, &Coordinates::tensor, tp);
      double seconds = sums * allreduce_seconds(topology, group, btc);
      if (head)
        seconds += allreduce_seconds(topology, group, bt) + allreduce_seconds(topology, group, 2 * bt);
      return seconds;
    });
  }
  if (p > 1) {
    out.pipeline = worst_over(L, s, [&](Coordinates at) {
      const int me = rank_of(L, at);
      double seconds = 0;
      for (int peer : {s - 1, s + 1}) {
        if (peer < 0 || peer >= p) continue;
        Coordinates there = at;
        there.pipeline = peer;
        seconds += message_seconds(topology, rank_of(L, there), me, btc);
      }
      return seconds;
    });
  }
  if (!tail) return out;

  // The tail. The buckets overlap the last micro-batch's backward; the last one ready (the embedding's, or
  // on the last stage of a pipeline the tied embedding's, which waits for the end stages' sum) cannot.
  const ParameterLayout params = stage_parameters(r, c, s);
  const double P = static_cast<double>(params.count());
  const bool tied = p > 1 && (s == 0 || head);
  if (L.data > 1) {
    const comm::BucketPlan plan = comm::plan_buckets(block_ranges(params), r.bucket_mb);
    out.data = worst_over(L, s, [&](Coordinates at) {
      const std::vector<int> group = group_through(L, at, &Coordinates::data, L.data);
      double total = 0, last = 0;
      for (size_t b = 0; b < plan.buckets.size(); ++b) {
        const double seconds = bucket_seconds(topology, group, plan.buckets[b], c);
        total += seconds;
        const bool waits = tied && plan.buckets[b].offset <= params.find("wte.weight")->offset &&
                           params.find("wte.weight")->offset < plan.buckets[b].end();
        if (b + 1 == plan.buckets.size() || waits) last = std::max(last, seconds);
      }
      double exposed = std::max(last, total - cost.backward_share * out.compute);
      if (c.zero1) {
        const bool fp16 = c.codec == comm::CodecKind::kFp16;
        const double shard = std::ceil(P / L.data);
        // Every bucket's exchange runs while the backward computes (each bucket is split among the ranks,
        // comm/grad_sync.h); then the parameters (or fp16 updates) of every shard, after AdamW.
        const comm::Transfer gather{comm::Collective::kAllgather,
                                    static_cast<uint64_t>(shard * (fp16 ? 2 : 4)), L.data};
        exposed += comm::price_transfers(topology, group, {gather}).seconds;
        // The probe times encode + decode together: half for this rank's shard, half for every shard.
        if (fp16) exposed += topology.ranks[group[0]].codec_ns_per_float.at("fp16") * 1e-9 * (shard + P) / 2;
      }
      return exposed;
    });
  }
  if (tied) {
    out.data += worst_over(L, s, [&](Coordinates at) {
      Coordinates first = at, last = at;
      first.pipeline = 0;
      last.pipeline = p - 1;
      const double wte = kFloat * (r.model.vocab / tp) * r.model.d_model;
      return allreduce_seconds(topology, {rank_of(L, first), rank_of(L, last)}, wte);
    });
  }
  const double owned = c.zero1 ? std::ceil(P / L.data) : P;
  out.optimizer = scale * (owned * cost.adamw_ns * 1e-9 + cost.step_overhead_ms * 1e-3);
  return out;
}

std::vector<StageTime> stage_times(const PlanRequest& r, const LayoutChoice& c,
                                   const comm::Topology& topology, const CostModel& cost, bool tail = true) {
  const std::vector<double> scales = step_scales(topology, r.model, cost);
  std::vector<StageTime> out;
  for (int s = 0; s < c.layout.pipeline; ++s) {
    double scale = 0;
    for (int rank : stage_ranks(c.layout, s)) scale = std::max(scale, scales[rank]);
    out.push_back(stage_time(r, c, topology, cost, s, tail, scale));
  }
  return out;
}

double pace(const std::vector<StageTime>& stages) {
  double worst = 0;
  for (const StageTime& t : stages) worst = std::max(worst, t.busy());
  return worst;
}

// The split whose slowest stage is fastest, among the even one and those giving the last stage (which also
// runs the LM head) k blocks and the others the rest evenly; the even split when no other is faster. Where
// ranks share cores, the split whose simulated step is fastest: the probe's readings of their shares vary
// with the scheduler (parallel/shared_cores.h), and a stage that waits lends its core to the others.
std::vector<int> balanced_stages(const PlanRequest& r, LayoutChoice c, const comm::Topology& topology,
                                 const CostModel& cost) {
  const int p = c.layout.pipeline, layers = r.model.layers;
  if (p == 1) return c.stage_first;
  const bool shared = !cpu_shares(topology).empty() || !node_contention(topology, r.model).empty();
  auto seconds_of = [&](const LayoutChoice& split) {
    return shared ? predict_time(r, split, topology, cost).step()
                  : pace(stage_times(r, split, topology, cost, false));
  };
  std::vector<int> best = c.stage_first;
  double best_seconds = seconds_of(c);
  for (int k = 1; k <= layers - (p - 1); ++k) {
    std::vector<int> first = split_blocks(layers - k, p - 1, "");
    first.push_back(layers);
    c.stage_first = first;
    const double seconds = seconds_of(c);
    if (seconds < best_seconds * (1 - 1e-9)) {
      best_seconds = seconds;
      best = first;
    }
  }
  return best;
}

std::string split_text(const LayoutChoice& c) {
  std::vector<int> counts;
  for (int s = 0; s < c.layout.pipeline; ++s) counts.push_back(c.stage_blocks(s));
  return fmt::format("{}", fmt::join(counts, ","));
}

bool even_split(const LayoutChoice& c) {
  return c.stage_first == split_blocks(c.stage_first.back(), c.layout.pipeline, "");
}

}  // namespace

std::string LayoutChoice::name() const {
  std::string out = fmt::format("dp{}·tp{}·pp{}", layout.data, layout.tensor, layout.pipeline);
  if (layout.pipeline > 1 && !even_split(*this)) out += fmt::format(" [{}]", split_text(*this));
  out += fmt::format(" m{}", micro_batches);
  if (layout.pipeline > 1) out += fmt::format(" {}", schedule_name(schedule));
  if (layout.data > 1) {
    out += fmt::format(" zero{} {}", zero1 ? 1 : 0, codec_spec(codec).name());
  }
  return out;
}

std::string LayoutChoice::train_flags() const {
  std::string out = fmt::format("--tensor-parallel {} --pipeline-parallel {} --grad-accum {}", layout.tensor,
                                layout.pipeline, micro_batches);
  if (layout.pipeline > 1) {
    out += fmt::format(" --pipeline-schedule {}", schedule_name(schedule));
    // Always: train's default split weighs the LM head, so an even split must be asked for.
    out += fmt::format(" --pipeline-split {}", split_text(*this));
  }
  if (layout.data > 1) {
    out += fmt::format(" --zero {} --grad-compression {}", zero1 ? 1 : 0, codec_spec(codec).name());
  }
  return out;
}

std::vector<LayoutChoice> enumerate_layouts(const PlanRequest& r) {
  r.model.validate();
  if (r.ranks < 1) fail_usage("--ranks must be at least 1, got {}", r.ranks);
  if (r.batch < 1) fail_usage("--batch must be at least 1, got {}", r.batch);
  if (r.max_micro_batches < 1) fail("internal: at most {} micro-batches", r.max_micro_batches);
  std::vector<LayoutChoice> out;
  for (int tp = 1; tp <= r.ranks; ++tp) {
    if (r.ranks % tp != 0 || r.model.heads % tp != 0 || r.model.vocab % tp != 0) continue;
    for (int pp = 1; pp <= std::min(r.ranks / tp, r.model.layers); ++pp) {
      if (r.ranks % (tp * pp) != 0) continue;
      const Layout layout{.data = r.ranks / (tp * pp), .tensor = tp, .pipeline = pp};
      if (r.batch % layout.data != 0) continue;
      const int rows = r.batch / layout.data;
      for (int m = 1; m <= std::min(rows, r.max_micro_batches); ++m) {
        if (rows % m != 0) continue;
        for (PipelineSchedule schedule : {PipelineSchedule::kOneFOneB, PipelineSchedule::kGPipe}) {
          if (pp == 1 && schedule == PipelineSchedule::kGPipe) continue;  // the same step without stages
          for (bool zero1 : {false, true}) {
            for (comm::CodecKind codec : {comm::CodecKind::kNone, comm::CodecKind::kFp16}) {
              if (layout.data == 1 && (zero1 || codec != comm::CodecKind::kNone)) continue;
              out.push_back({.layout = layout,
                             .micro_batches = m,
                             .schedule = schedule,
                             .zero1 = zero1,
                             .codec = codec,
                             .stage_first = split_blocks(r.model.layers, pp, "")});
            }
          }
        }
      }
    }
  }
  if (out.empty()) {
    fail_usage(
        "no layout of --ranks {}: data x tensor x pipeline must equal it, with the tensor degree dividing "
        "--heads {} and --vocab {}, at most --layers {} stages, and the data degree dividing --batch {}",
        r.ranks, r.model.heads, r.model.vocab, r.model.layers, r.batch);
  }
  return out;
}

StageActivations stage_activations(const GptConfig& config, int B, int T, int blocks, bool head, int tensor) {
  auto elements = [&](Act kind) { return unit_elements(config, B, T, kind, tensor); };
  StageActivations out;
  for (Act kind : block_units()) out.kept += blocks * elements(kind);
  out.kept += elements(Act::kEmbed);  // the first stage's embedding, a later one's received input
  if (head) out.kept += elements(Act::kLnf) + elements(Act::kLogits) + elements(Act::kLoss);
  out.scratch = elements(Act::kScratch);
  return out;
}

MemoryPrediction predict_memory(const PlanRequest& r, const LayoutChoice& c, const CostModel& cost) {
  const Layout& L = c.layout;
  const int p = L.pipeline, dp = L.data, mb = micro_batch(r, c), m = c.micro_batches;
  MemoryPrediction most;
  std::vector<double> totals;
  for (int s = 0; s < p; ++s) {
    const ParameterLayout params = stage_parameters(r, c, s);
    const double P = static_cast<double>(params.count());
    MemoryPrediction here;
    here.stage = s;
    here.weights = 2 * kFloat * P;
    here.optimizer =
        adamw_state_bytes_per_parameter(r.optimizer_8bit ? StatePrecision::k8Bit : StatePrecision::kFp32) *
        (c.zero1 && dp > 1 ? std::ceil(P / dp) : P);
    const StageActivations act =
        stage_activations(r.model, mb, r.model.seq_len, c.stage_blocks(s), s == p - 1, L.tensor);
    here.activations = kFloat * (pipeline_in_flight(c, s) * static_cast<double>(act.kept) + act.scratch);
    if (p > 1) {
      const int directions = (s > 0 ? 1 : 0) + (s < p - 1 ? 1 : 0);
      here.pipeline_buffers =
          kFloat * mb * r.model.seq_len * r.model.d_model * (directions * m + 1 + (s > 0 ? 1 : 0));
    }
    if (dp > 1) {
      const bool fp16 = c.codec == comm::CodecKind::kFp16;
      const double per_parameter = !c.zero1 ? (fp16 ? 4 + 4.0 / dp : 0) : (fp16 ? 4 + 4.0 / dp + 2 : 8);
      here.codec_buffers = per_parameter * P;
    }
    const bool end_stage = p > 1 && (s == 0 || s == p - 1);
    if (end_stage) here.mpi_scratch = kFloat * (r.model.vocab / L.tensor) * r.model.d_model;
    if (dp > 1 && !c.zero1 && c.codec == comm::CodecKind::kNone) {
      for (const comm::GradRange& b : comm::plan_buckets(block_ranges(params), r.bucket_mb).buckets)
        here.mpi_scratch = std::max(here.mpi_scratch, kFloat * static_cast<double>(b.count));
    }
    if (L.tensor > 1)
      here.mpi_scratch = std::max(here.mpi_scratch, kFloat * mb * r.model.seq_len * r.model.d_model);
    here.process = cost.process_bytes;
    totals.push_back(here.total());
    if (s == 0 || here.total() > most.total()) most = here;
  }
  most.stage_total = std::move(totals);
  return most;
}

TimePrediction predict_time(const PlanRequest& r, const LayoutChoice& c, const comm::Topology& topology,
                            const CostModel& cost) {
  if (topology.world != r.ranks) {
    fail_usage("--topology describes {} ranks; --ranks is {}", topology.world, r.ranks);
  }
  const std::vector<CpuShare> shares = cpu_shares(topology);
  const std::vector<StageTime> stages =
      stage_times(r, c, shares.empty() ? topology : at_a_core_each(topology, shares), cost);
  TimePrediction out;
  for (int s = 0; s < c.layout.pipeline; ++s) {
    if (stages[s].busy() > stages[out.pace_stage].busy()) out.pace_stage = s;
  }
  const StageTime& slowest = stages[out.pace_stage];
  const int m = c.micro_batches;
  out.compute = m * slowest.compute;
  out.tensor = m * slowest.tensor;
  out.pipeline = m * slowest.pipeline;
  out.bubble = (c.layout.pipeline - 1) * slowest.busy();
  // Every rank waits for the slowest tail at the step's closing all-reduce.
  double tail = -1;
  for (const StageTime& t : stages) {
    if (t.data + t.optimizer > tail) {
      tail = t.data + t.optimizer;
      out.data = t.data;
      out.optimizer = t.optimizer;
    }
  }
  const std::vector<NodeContention> contention = node_contention(topology, r.model);
  if (!shares.empty() || !contention.empty()) {
    std::vector<SimulatedStage> simulated;
    for (int s = 0; s < c.layout.pipeline; ++s) {
      const StageTime& t = stages[s];
      simulated.push_back({.forward = (1 - cost.backward_share) * t.busy(),
                           .backward = cost.backward_share * t.busy(),
                           .tail = t.data + t.optimizer,
                           .ranks = stage_ranks(c.layout, s)});
    }
    const double turns = simulate_step(c.schedule, m, simulated, shares);
    if (!shares.empty()) out.taking_turns = std::max(0.0, turns - out.step());
    if (!contention.empty())
      out.at_once = std::max(0.0, simulate_step(c.schedule, m, simulated, shares, contention) - turns);
  }
  return out;
}

std::vector<PlannedLayout> plan_layouts(const PlanRequest& r, const comm::Topology& topology,
                                        const CostModel& cost) {
  std::vector<PlannedLayout> out;
  for (LayoutChoice c : enumerate_layouts(r)) {
    c.stage_first = balanced_stages(r, c, topology, cost);
    PlannedLayout planned;
    planned.choice = c;
    planned.memory = predict_memory(r, c, cost);
    planned.time = predict_time(r, c, topology, cost);
    planned.fits = planned.memory.total() <= r.memory_cap;
    out.push_back(std::move(planned));
  }
  // Stable, and steps predicted equal to 0.1 ms count as equal: ties keep the enumeration's order (fewer
  // tensor ranks, stages, micro-batches; 1F1B before GPipe), not the last bits of a sum.
  auto tenths_of_ms = [](const PlannedLayout& p) { return std::llround(p.time.step() * 1e4); };
  std::stable_sort(out.begin(), out.end(), [&](const PlannedLayout& a, const PlannedLayout& b) {
    if (a.fits != b.fits) return a.fits;
    return a.fits ? tenths_of_ms(a) < tenths_of_ms(b) : a.memory.total() < b.memory.total();
  });
  return out;
}

comm::Topology uniform_topology(int world, double gflops, const CostModel& cost) {
  comm::Topology t;
  t.world = world;
  for (int r = 0; r < world; ++r) {
    t.ranks.push_back({.host = "",
                       .node = 0,
                       .sgemm_gflops = gflops,
                       .codec_ns_per_float = {{"fp16", cost.fp16_ns_per_float}},
                       .cpus = {}});
  }
  t.latency_us.assign(world, std::vector<double>(world, cost.link_latency_us));
  t.bandwidth_MBps.assign(world, std::vector<double>(world, cost.link_bandwidth_MBps));
  for (int r = 0; r < world; ++r) t.latency_us[r][r] = t.bandwidth_MBps[r][r] = 0;
  return t;
}

}  // namespace triad::parallel
