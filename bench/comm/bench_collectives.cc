// Collective throughput: our gradient all-reduce paths (GradSync with each codec, flat and hierarchical)
// against plain MPI_Allreduce + scale on the same buffer, for 1 KiB .. 256 MiB, in the same run.
// Flags: --help.
//
// Each cell is the median over repetitions of the slowest rank's time for one average of the buffer
// (bucket_ready + finish for GradSync). "x" is MPI_Allreduce's time divided by ours: above 1 we are faster.
// Bytes are what one rank sends in the bandwidth-optimal model (docs/comm.md). The "auto" path chooses
// with the cost model, on --topology FILE or on a quick probe made at the start.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/comm/kernels.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"

using namespace triad;
using comm::Context;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void barrier(Context& context) {
  MPI_Request request;
  MPI_Ibarrier(context.comm(), &request);
  context.wait(&request, 1, "benchmark barrier");
}

// Median over repetitions of the slowest rank's time; runs until `seconds` are spent (3 to 50 repetitions).
// `runs` counts every call, warm-up included (to compare with bytes counted on a link).
template <typename Body>
double median_seconds(Context& context, double seconds, int& runs, Body&& body) {
  body();  // warm-up: connections, first-touch of buffers, codec set-up
  runs = 1;
  std::vector<double> times;
  double spent = 0;
  while (times.size() < 3 || (spent < seconds && times.size() < 50)) {
    barrier(context);
    double start = now();
    body();
    ++runs;
    double elapsed = now() - start;
    MPI_Allreduce(MPI_IN_PLACE, &elapsed, 1, MPI_DOUBLE, MPI_MAX, context.comm());
    times.push_back(elapsed);
    spent += elapsed;
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

struct Path {
  std::string name;  // "mpi", "none", "none/poll", "hier", or a codec
  comm::GradSyncOptions options;
};

std::vector<Path> parse_paths(const std::string& list) {
  std::vector<Path> paths;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = std::min(list.find(',', start), list.size());
    std::string name = list.substr(start, comma - start);
    start = comma + 1;
    Path path{name, {}};
    if (name == "mpi") {
      paths.push_back(path);
      continue;
    }
    std::string codec = name;
    if (name.ends_with("/poll")) {
      codec = name.substr(0, name.size() - 5);
      path.options.progress = comm::Progress::kPoll;
    }
    if (name.starts_with("hier:")) {
      codec = codec.substr(5);
      path.options.hierarchical = true;
    }
    path.options.codec = comm::parse_codec_spec(codec);
    paths.push_back(path);
  }
  return paths;
}

std::string human(size_t bytes) {
  if (bytes >= (1 << 20)) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} KiB", bytes >> 10);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Collective throughput: GradSync with each codec against MPI_Allreduce + scale on the same "
      "buffer, 1 KiB .. 256 MiB (run under mpirun -np N)",
      "bench_comm_collectives"};
  double min_kib = 1, max_mib = 256, seconds = 0.5;
  int ranks_per_node = 0;
  std::string paths_flag = "mpi,none,none/poll,hier:none,fp16,int8,topk:0.01,powersgd:4,auto", json_path;
  std::string topology_path;
  app.add_option("--min-kib", min_kib, "Smallest buffer, KiB (sizes grow 4x)")->capture_default_str();
  app.add_option("--max-mib", max_mib, "Largest buffer, MiB")->capture_default_str();
  app.add_option("--seconds", seconds, "Time per cell (3 to 50 repetitions; median of the slowest rank)")
      ->capture_default_str();
  app.add_option(
         "--paths", paths_flag,
         "Comma-separated: mpi, none, none/poll, hier:none, a codec (fp16, int8, topk:R, powersgd:R), "
         "auto")
      ->capture_default_str();
  app.add_option("--topology", topology_path, "Probe JSON for auto (default: a quick probe at the start)");
  app.add_option("--json", json_path, "Also write the table as JSON");
  app.add_option("--ranks-per-node", ranks_per_node,
                 "Treat every N consecutive ranks as one node (0: shared memory)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  int code = 0;
  try {
    std::unique_ptr<Context> opened = Context::open({.timeout_s = 600, .ranks_per_node = ranks_per_node});
    Context& context = *opened;
    bench::require_mpirun(context, app);
    set_quiet(true);  // auto's per-bucket log lines; its choices are listed after the table
    bool root = context.rank() == 0;
    std::vector<Path> paths = parse_paths(paths_flag);
    for (Path& path : paths) {
      if (path.name != "auto") continue;
      path.options.topology =
          topology_path.empty()
              ? comm::probe_topology(context, {.bandwidth_bytes = 1 << 20, .bandwidth_messages = 4})
              : comm::load_topology(topology_path);
    }
    if (root) {
      fmt::print(
          "bench_comm_collectives: {} ranks on {} nodes; median of the slowest rank; x = MPI_Allreduce "
          "time / ours\n\n",
          context.world(), context.node_count());
      fmt::print("{:>8}", "size");
      for (const Path& p : paths) fmt::print(" | {:>19}", p.name);
      fmt::print("\n");
    }
    nlohmann::json rows = nlohmann::json::array();
    std::vector<std::string> auto_choices;
    for (size_t bytes = static_cast<size_t>(min_kib * 1024); bytes <= max_mib * (1 << 20); bytes *= 4) {
      size_t n = bytes / sizeof(float);
      std::vector<float> data(n), original(n);
      for (size_t i = 0; i < n; ++i) {
        original[i] = static_cast<float>(comm::mix64(i * 31 + context.rank()) >> 40) * 0x1p-24f - 0.5f;
      }
      size_t side = static_cast<size_t>(std::sqrt(static_cast<double>(n)));
      comm::GradRange bucket{0, n, {comm::Matrix{0, side, side}}};
      double mpi_seconds = 0;
      nlohmann::json row = {{"bytes", bytes}};
      if (root) fmt::print("{:>8}", human(bytes));
      for (const Path& path : paths) {
        double t;
        uint64_t sent = 0;
        int runs = 0;
        if (path.name == "mpi") {
          t = median_seconds(context, seconds, runs, [&] {
            data = original;
            MPI_Allreduce(MPI_IN_PLACE, data.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, context.comm());
            for (float& v : data) v *= 1.0f / context.world();
          });
          mpi_seconds = t;
          sent = comm::bytes_sent({comm::Collective::kAllreduce, bytes, context.world()});
        } else {
          comm::GradSync sync(context, data.data(), n, {bucket}, path.options);
          t = median_seconds(context, seconds, runs, [&] {
            std::copy(original.begin(), original.end(), data.begin());
            sync.bucket_ready(0);
            sync.finish();
          });
          sent = sync.stats().bytes_sent;
          if (path.name == "auto")
            auto_choices.push_back(human(bytes) + " " + sync.bucket_codecs()[0].name());
        }
        row[path.name] = {{"seconds", t}, {"bytes_sent", sent}, {"runs", runs}};
        if (root) {
          if (path.name == "mpi") {
            fmt::print(" | {:>9.3f} ms {:>5.2f}GB/s", t * 1e3, bytes / t / 1e9);
          } else {
            fmt::print(" | {:>9.3f} ms {:>5.2f}x", t * 1e3, mpi_seconds / t);
          }
          std::fflush(stdout);
        }
      }
      if (root) fmt::print("\n");
      rows.push_back(row);
    }
    if (root) {
      fmt::print("\nbytes sent per rank per average (model) at the largest size:");
      for (const Path& path : paths)
        fmt::print(" {} {}", path.name, rows.back()[path.name]["bytes_sent"].get<uint64_t>());
      fmt::print("\n");
      if (!auto_choices.empty()) fmt::print("auto chose: {}\n", fmt::join(auto_choices, ", "));
      if (!json_path.empty()) {
        write_file_atomic(json_path,
                          nlohmann::json{{"world", context.world()}, {"rows", rows}}.dump(2) + "\n");
      }
    }
  } catch (const Error& e) {
    fmt::print(stderr, "triad: error: {}\n", e.what());
    code = 1;
  }
  return comm::shutdown(code);
}
