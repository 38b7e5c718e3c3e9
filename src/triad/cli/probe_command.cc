#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "triad/cli/cli.h"
#include "triad/cli/options.h"
#include "triad/comm/context.h"
#include "triad/comm/options.h"
#include "triad/comm/topology.h"
#include "triad/core/blas.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/memory.h"
#include "triad/core/parallel.h"
#include "triad/model/config.h"
#include "triad/parallel/contention.h"
#include "triad/parallel/planner.h"

namespace triad::cli {

namespace {

struct ProbeFlags {
  std::string out = "topology.json";
  std::string predict_from;
  double bandwidth_mb = 4;
  comm::ProbeOptions probe;
  int threads = 1;
  std::vector<double> bucket_mb = {0.25, 1, 4, 16, 64};
  std::string codecs = "fp16,int8,topk:0.01,powersgd:4";
  comm::CommOptions comm;
  // With a --batch: the model timed alone and at once (parallel/contention.h).
  GptConfig model;
  int batch = 0;
};

// A bucket of `mb` MiB holding one square matrix (what the cost model assumes for PowerSGD here).
comm::GradRange square_bucket(double mb) {
  size_t n = static_cast<size_t>(mb * (1 << 20) / sizeof(float));
  size_t side = static_cast<size_t>(std::sqrt(static_cast<double>(n)));
  return comm::GradRange{0, n, {comm::Matrix{0, side, side}}};
}

nlohmann::json predictions(const comm::Topology& topology, const ProbeFlags& flags) {
  comm::CodecSpec spec = comm::parse_codec_spec("auto:" + flags.codecs);
  comm::CodecOptions options{.int8_chunk = flags.comm.int8_chunk};
  std::vector<int> group = comm::codec_group(topology, flags.comm.hierarchical);
  nlohmann::json rows = nlohmann::json::array();
  for (double mb : flags.bucket_mb) {
    std::vector<comm::Prediction> ranked =
        comm::choose_codec(topology, group, square_bucket(mb), spec, options);
    nlohmann::json ms = nlohmann::json::object();
    std::vector<std::string> line;
    for (const comm::Prediction& p : ranked) {
      ms[p.codec.name()] = std::round(p.seconds * 1e6) / 1e3;
      line.push_back(fmt::format("{} {:.3f}", p.codec.name(), p.seconds * 1e3));
    }
    log_info("probe: bucket {:g} MiB over {} ranks: {} ms -> {}", mb, group.size(), fmt::join(line, ", "),
             ranked[0].codec.name());
    rows.push_back({{"bucket_mb", mb}, {"predicted_ms", ms}, {"auto", ranked[0].codec.name()}});
  }
  return rows;
}

}  // namespace

Runner add_probe_command(CLI::App& root) {
  auto flags = std::make_shared<ProbeFlags>();
  CLI::App* cmd = root.add_subcommand(
      "probe",
      "Measure latency and bandwidth between every pair of ranks and each rank's compute speed (run under "
      "mpirun); predict each gradient codec's time per bucket.");
  cmd->footer(
      "Example: mpirun -np 2 build/triad probe --out topology.json\n"
      "         build/triad probe --predict topology.json --bucket-mb 1 --bucket-mb 64\n"
      "The JSON holds latency_us[i][j], bandwidth_MBps[i][j] and, per rank, host, node, sgemm_gflops (every\n"
      "rank at once), sgemm_alone_gflops (the others of its node waiting), cpus and "
      "codec_ns_per_float; train --grad-compression auto --topology FILE uses it. See docs/comm.md.\n"
      "Given a model and --batch, it also times the model's training step on batch / ranks sequences by\n"
      "each node's first rank alone, then by every rank at once (micro_step_alone_ms, "
      "micro_step_at_once_ms):\n"
      "what the cost model's constants miss on this machine, and how much ranks computing together slow\n"
      "each other; triad plan and train --layout auto price both:\n"
      "  mpirun -np 4 build/triad probe --layers 6 --d-model 384 --heads 6 --seq-len 256 --vocab 16384 \\\n"
      "    --batch 8 --out topology.json");
  add_config_option(*cmd);
  cmd->add_option("--out", flags->out, "Where rank 0 writes the topology JSON (atomically)")
      ->type_name("FILE");
  cmd->add_option("--predict", flags->predict_from,
                  "Measure nothing: read this topology JSON and print the cost model's predictions")
      ->type_name("FILE");
  cmd->add_option("--bandwidth-mb", flags->bandwidth_mb,
                  "Message size of the bandwidth streams (both ways at once), MiB")
      ->check(positive());
  cmd->add_option("--messages", flags->probe.bandwidth_messages,
                  "Messages each way in the bandwidth measurement")
      ->check(positive());
  cmd->add_option("--repeats", flags->probe.bandwidth_repeats,
                  "Streams each way of sending in the bandwidth measurement; the median counts")
      ->check(positive());
  cmd->add_option("--round-trips", flags->probe.latency_round_trips, "Timed ping-pongs per pair for latency")
      ->check(positive());
  cmd->add_option("--gemm-size", flags->probe.gemm_size, "Side of the square SGEMM that measures GFLOP/s")
      ->check(positive());
  cmd->add_option("--threads", flags->threads, "BLAS threads per rank for the SGEMM measurement")
      ->check(positive());
  cmd->add_option("--bucket-mb", flags->bucket_mb, "Bucket sizes (MiB) to predict codec times for")
      ->check(positive());
  cmd->add_option("--codecs", flags->codecs, "Codecs to predict besides none (comma-separated)");
  cmd->add_flag("--hierarchical", flags->comm.hierarchical,
                "Predict for codecs running among node leaders only (--hierarchical training)");
  add_options(*cmd, comm::CommOptions::context_options(), flags->comm);
  add_options(*cmd, GptConfig::options(), flags->model);
  cmd->add_option("--vocab", flags->model.vocab, "Vocabulary size V of the model to time (with --batch)")
      ->check(positive());
  cmd->add_option("--batch", flags->batch,
                  "Global batch of the model to time alone and at once (0: time no model)")
      ->check(non_negative());

  return [flags]() {
    check_threads(flags->threads);
    if (!flags->predict_from.empty()) {
      comm::Topology topology = comm::load_topology(flags->predict_from);
      fmt::print("{}\n", nlohmann::json{{"topology", flags->predict_from},
                                        {"world", topology.world},
                                        {"predictions", predictions(topology, *flags)}}
                             .dump());
      return 0;
    }
    std::unique_ptr<comm::Context> opened = comm::Context::open(comm::context_options(flags->comm));
    comm::Context& context = *opened;
    if (context.world() == 1)
      log_warn("probe: a single process has no links to measure (run it under mpirun)");
    blas_set_threads(flags->threads);
    flags->probe.bandwidth_bytes = static_cast<size_t>(flags->bandwidth_mb * (1 << 20));
    if (context.rank() == 0) log_info("probe: {} ranks on {} nodes", context.world(), context.node_count());
    comm::Topology topology = comm::probe_topology(context, flags->probe);
    if (flags->batch > 0) {
      flags->model.validate();
      const int micro_batch = std::max(1, flags->batch / context.world());
      if (context.rank() == 0) {
        log_info("probe: timing {} at micro-batch {}, alone and with every rank at once",
                 flags->model.describe(), micro_batch);
      }
      parallel::measure_micro_steps(context, flags->model, micro_batch,
                                    static_cast<double>(physical_memory_bytes()) / context.node_size(),
                                    topology);
      for (const std::string& line : parallel::timing_lines(topology, flags->model, parallel::CostModel{})) {
        if (context.rank() == 0) log_info("probe: {}", line);
      }
    }
    if (context.rank() != 0) return 0;
    write_file_atomic(flags->out, comm::topology_to_json(topology).dump(2) + "\n");
    double min_bandwidth = 0, max_latency = 0;
    for (int i = 0; i < topology.world; ++i) {
      for (int j = 0; j < topology.world; ++j) {
        if (i == j) continue;
        double bw = topology.bandwidth_MBps[i][j];
        min_bandwidth = min_bandwidth == 0 ? bw : std::min(min_bandwidth, bw);
        max_latency = std::max(max_latency, topology.latency_us[i][j]);
      }
    }
    fmt::print("{}\n", nlohmann::json{{"out", flags->out},
                                      {"world", topology.world},
                                      {"min_bandwidth_MBps", min_bandwidth},
                                      {"max_latency_us", max_latency},
                                      {"predictions", predictions(topology, *flags)}}
                           .dump());
    return 0;
  };
}

}  // namespace triad::cli
