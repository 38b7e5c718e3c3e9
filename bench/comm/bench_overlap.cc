// Overlap of gradient communication with the backward: a simulated backward of L blocks (each an SGEMM
// loop of about --block-ms on one BLAS thread) hands each block's gradient bucket to GradSync as it
// finishes, then waits in finish(). Compares who drives MPI meanwhile:
//   sequential   compute everything, then finish() starts and waits for all buckets (no overlap)
//   poll         bucket_ready() starts and polls; nothing polls during a block's compute
//   thread/N     a progress thread polls every N us while the backward computes
// Flags: --help.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_flags.h"
#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/core/blas.h"
#include "triad/core/error.h"

using namespace triad;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// About `ms` of SGEMM on one thread (calibrated once).
struct Compute {
  int n = 256;
  int reps_per_ms = 1;
  std::vector<float> a, b, c;
  Compute() : a(n * n, 0.5f), b(n * n, 0.25f), c(n * n) {
    run(10);
    double start = now();
    run(50);
    reps_per_ms = std::max(1, static_cast<int>(50 / ((now() - start) * 1e3)));
  }
  void run(int reps) {
    for (int r = 0; r < reps; ++r) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f,
                  c.data(), n);
    }
  }
  void ms(double ms) { run(static_cast<int>(ms * reps_per_ms)); }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Overlap of gradient communication with a simulated backward: sequential, poll and a progress "
      "thread (run under mpirun -np N)",
      "bench_comm_overlap"};
  int blocks = 8, steps = 5;
  double block_ms = 20, bucket_mb = 8;
  std::string codec = "none";
  app.add_option("--blocks", blocks, "Blocks of the simulated backward, one bucket each")
      ->capture_default_str();
  app.add_option("--block-ms", block_ms, "Compute per block (an SGEMM loop on one BLAS thread)")
      ->capture_default_str();
  app.add_option("--bucket-mb", bucket_mb, "Gradient MiB per block")->capture_default_str();
  app.add_option("--steps", steps, "Timed steps per mode after one warm-up (medians printed)")
      ->capture_default_str();
  app.add_option("--codec", codec, "Gradient codec: none, fp16, int8, topk:R, powersgd:R")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  int code = 0;
  try {
    std::unique_ptr<comm::Context> opened = comm::Context::open({.timeout_s = 600});
    comm::Context& context = *opened;
    bench::require_mpirun(context, app);
    blas_set_threads(1);
    Compute compute;
    size_t per_block = static_cast<size_t>(bucket_mb * (1 << 20) / sizeof(float));
    std::vector<float> grads(per_block * blocks, 1.0f);
    std::vector<comm::GradRange> ranges;
    for (int b = 0; b < blocks; ++b) ranges.push_back({b * per_block, per_block, {}});
    comm::BucketPlan plan = comm::plan_buckets(ranges, 0);  // one bucket per block
    if (context.rank() == 0) {
      fmt::print("bench_comm_overlap: {} ranks, {} blocks x {:g} ms compute, {:g} MiB buckets, codec {}\n\n",
                 context.world(), blocks, block_ms, bucket_mb, codec);
      fmt::print("{:<12} {:>10} {:>12} {:>10} {:>10} {:>8}\n", "mode", "step ms", "compute ms", "comm ms",
                 "wait ms", "hidden");
    }
    struct Mode {
      std::string name;
      bool overlap;
      comm::Progress progress;
      int poll_us;
    };
    std::vector<Mode> modes = {{"compute", false, comm::Progress::kPoll, 0},
                               {"sequential", false, comm::Progress::kPoll, 0},
                               {"poll", true, comm::Progress::kPoll, 0},
                               {"thread/0", true, comm::Progress::kThread, 0},
                               {"thread/50", true, comm::Progress::kThread, 50},
                               {"thread/200", true, comm::Progress::kThread, 200},
                               {"thread/1000", true, comm::Progress::kThread, 1000}};
    for (const Mode& mode : modes) {
      comm::GradSyncOptions options;
      options.codec = comm::parse_codec_spec(codec);
      options.progress = mode.progress;
      options.poll_us = mode.poll_us;
      comm::GradSync sync(context, grads.data(), grads.size(), plan.buckets, options);
      std::vector<double> step_ms, compute_ms, comm_ms, wait_ms, hidden;
      for (int s = 0; s <= steps; ++s) {  // step 0 warms up
        MPI_Barrier(context.comm());
        double start = now(), computing = 0;
        for (int b = blocks - 1; b >= 0; --b) {
          double t = now();
          compute.ms(block_ms);
          computing += now() - t;
          int ready = plan.ready_after_block[b];
          if (ready >= 0 && mode.overlap) sync.bucket_ready(ready);
        }
        if (mode.name != "compute") sync.finish();
        double elapsed = now() - start;
        if (s == 0) continue;
        step_ms.push_back(elapsed * 1e3);
        compute_ms.push_back(computing * 1e3);
        comm_ms.push_back(mode.name == "compute" ? 0 : sync.stats().comm_ms);
        wait_ms.push_back(mode.name == "compute" ? 0 : sync.stats().wait_ms);
        hidden.push_back(mode.name == "compute" ? 0 : sync.stats().comm_hidden_fraction);
      }
      auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
      };
      double worst_step = median(step_ms);
      MPI_Allreduce(MPI_IN_PLACE, &worst_step, 1, MPI_DOUBLE, MPI_MAX, context.comm());
      if (context.rank() == 0) {
        fmt::print("{:<12} {:>10.1f} {:>12.1f} {:>10.1f} {:>10.1f} {:>8.2f}\n", mode.name, worst_step,
                   median(compute_ms), median(comm_ms), median(wait_ms), median(hidden));
      }
    }
  } catch (const Error& e) {
    fmt::print(stderr, "triad: error: {}\n", e.what());
    code = 1;
  }
  return comm::shutdown(code);
}
