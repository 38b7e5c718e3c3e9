#pragma once
// The measured machine and the cost model that chooses codecs (paper §3.2.2, Eq. 7).
//
// `triad probe` measures, between every pair of ranks, one-way latency (half a ping-pong round trip) and
// bandwidth (streams of large messages both ways at once, as collectives use a link), and on every rank SGEMM
// GFLOP/s and each codec's encode + decode time. The model prices a collective on a group of ranks the way
// Eq. 7 prices a link, bytes / B_ij + messages x tau_ij, but takes the maximum over the links a ring uses
// (they carry their shares at the same time) rather than the sum, adds the codec's measured compute time, and
// so predicts each codec's time for a bucket. `auto` picks the cheapest codec that beats sending the bucket
// raw.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/comm/buckets.h"
#include "triad/comm/codec.h"

namespace triad::comm {

class Context;

struct RankInfo {
  std::string host;
  int node = 0;             // index of its node (ranks sharing memory)
  double sgemm_gflops = 0;  // one BLAS thread, square SGEMM
  // Encode + decode time per float: "fp16", "int8", "topk" (1 %), "powersgd" (rank 4, per matrix float).
  std::map<std::string, double> codec_ns_per_float;
  // The CPUs it may run on (its affinity); empty when not known (an older file). parallel/shared_cores.h
  // tells the ranks that share them.
  std::vector<int> cpus;
  // SGEMM GFLOP/s with the other ranks of its node waiting: a core's speed where ranks share cores (and
  // sgemm_gflops, measured with every rank at once, their share of one). 0 when not known (an older file).
  double sgemm_alone_gflops = 0;
  // A model's training step on one micro-batch (Topology::micro_step_of), in ms: its node's first rank
  // while the others wait, and this rank with every rank at once (parallel/contention.h). 0: not timed.
  double micro_step_alone_ms = 0, micro_step_at_once_ms = 0;
};

struct Topology {
  int world = 1;
  std::vector<RankInfo> ranks;
  std::vector<std::vector<double>> latency_us;  // [i][j]: one-way latency i -> j; 0 on the diagonal
  std::vector<std::vector<double>>
      bandwidth_MBps;  // [i][j]: i -> j while j -> i sends too, 1e6 bytes/s; 0 on the diagonal
  // What the ranks' micro-step timings are of ({"model": GptConfig JSON, "micro_batch": n}); null when the
  // probe was given no model.
  nlohmann::json micro_step_of;
};

struct ProbeOptions {
  size_t bandwidth_bytes = 4 << 20;  // message size of the bandwidth streams
  int bandwidth_messages = 8;        // messages each way
  int bandwidth_repeats = 5;         // streams each way of sending; their median counts
  int latency_round_trips = 200;
  int gemm_size = 512;
  size_t codec_floats = 1 << 20;  // codec timing size
};

// Measures the topology (collective; every rank gets the same result).
Topology probe_topology(Context& context, const ProbeOptions& options);
nlohmann::json topology_to_json(const Topology& topology);
// Validates shape and values; errors name `where` (a file) and the field.
Topology topology_from_json(const nlohmann::json& json, const std::string& where);
Topology load_topology(const std::string& path);

struct Prediction {
  CodecSpec codec;
  double seconds = 0;    // total
  double wire_s = 0;     // bytes / bandwidth on the slowest link
  double latency_s = 0;  // message steps x latency
  double compute_s = 0;  // encode, decode, reduction, PowerSGD products
  uint64_t bytes = 0;    // bytes one rank sends
};

// Predicted time of averaging `bucket` with `codec` (not auto) over the ranks `group` of the topology.
Prediction predict(const Topology& topology, const std::vector<int>& group, const GradRange& bucket,
                   const CodecSpec& codec, const CodecOptions& options);
// auto: predictions for none and every candidate, the chosen one first (none unless a candidate is faster).
std::vector<Prediction> choose_codec(const Topology& topology, const std::vector<int>& group,
                                     const GradRange& bucket, const CodecSpec& auto_spec,
                                     const CodecOptions& options);
// The wire and latency time of `transfers` over the ranks `group`, one after another, as predict() prices a
// codec's (each on the ring's slowest link; all-to-all over every pair), without a codec's compute.
Prediction price_transfers(const Topology& topology, const std::vector<int>& group,
                           const std::vector<Transfer>& transfers);
// GFLOP/s of a square n x n SGEMM on the calling thread: the best of three 0.1 s windows (the probe's
// sgemm_gflops).
double measure_sgemm_gflops(int n);

// The ranks a codec runs among: all of them, or with --hierarchical the first rank of every node.
std::vector<int> codec_group(const Topology& topology, bool hierarchical);

}  // namespace triad::comm
