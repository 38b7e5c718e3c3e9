#include <fmt/format.h>

#include <memory>

#include "triad/cli/cli.h"
#include "triad/cli/options.h"
#include "triad/comm/topology.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/parallel/contention.h"
#include "triad/parallel/planner.h"
#include "triad/parallel/shared_cores.h"

namespace triad::cli {

namespace {

struct PlanFlags {
  parallel::PlanRequest request;
  std::string memory = "2GiB";
  std::string topology;
  double gflops = 0;
  int top = 20;
  bool json = false;
};

std::string bytes_text(double bytes) {
  return format_bytes(static_cast<size_t>(bytes));
}

// The model's flags as `triad train` takes them (the vocabulary comes from the data there).
std::string model_flags(const parallel::PlanRequest& r) {
  return fmt::format("--layers {} --d-model {} --heads {} --seq-len {} --batch {}", r.model.layers,
                     r.model.d_model, r.model.heads, r.model.seq_len, r.batch);
}

void print_table(const std::vector<parallel::PlannedLayout>& ranked, const PlanFlags& flags,
                 const std::string& speed, const std::vector<std::string>& shared_cores,
                 const std::vector<std::string>& contention) {
  const parallel::PlanRequest& r = flags.request;
  fmt::print("{}, batch {} on {} ranks, at most {} per rank; {}\n", r.model.describe(), r.batch, r.ranks,
             bytes_text(r.memory_cap), speed);
  // Ranks that share cores: what taking turns adds to the parts, in its own column.
  // Ranks computing at once on a node: what they cost each other, in another.
  const bool turns = !shared_cores.empty(), at_once = !contention.empty();
  fmt::print("{:>4}  {:<40} {:>9} {:>9} {:>9} {:>9} {}{}{:>11}  {}\n", "#", "layout", "step ms", "compute",
             "comm", "bubble", turns ? fmt::format("{:>9} ", "turns") : "",
             at_once ? fmt::format("{:>9} ", "at once") : "", "peak/rank", "");
  const size_t shown =
      flags.top > 0 ? std::min(ranked.size(), static_cast<size_t>(flags.top)) : ranked.size();
  for (size_t i = 0; i < shown; ++i) {
    const parallel::PlannedLayout& p = ranked[i];
    const parallel::TimePrediction& t = p.time;
    const std::string note =
        !p.fits ? fmt::format("does not fit: {} > {}", bytes_text(p.memory.total()), bytes_text(r.memory_cap))
        : i == 0 ? "<- choice"
                 : "";
    fmt::print("{:>4}  {:<40} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f} {}{}{:>11}  {}\n", i + 1, p.choice.name(),
               t.step() * 1e3, (t.compute + t.optimizer) * 1e3, t.comm() * 1e3, t.bubble * 1e3,
               turns ? fmt::format("{:>9.2f} ", t.taking_turns * 1e3) : "",
               at_once ? fmt::format("{:>9.2f} ", t.at_once * 1e3) : "", bytes_text(p.memory.total()), note);
  }
  if (shown < ranked.size()) {
    fmt::print("      ... and {} more (--top 0 lists them all; --json gives each one's parts)\n",
               ranked.size() - shown);
  }
  fmt::print("choice: triad train {} {}\n", model_flags(r), ranked[0].choice.train_flags());
  for (const std::string& node : shared_cores) fmt::print("note: {}: {}\n", node, parallel::kSharedCoresNote);
  for (const std::string& node : contention) fmt::print("note: {}: {}\n", node, parallel::kTimingNote);
}

}  // namespace

Runner add_plan_command(CLI::App& root) {
  auto flags = std::make_shared<PlanFlags>();
  flags->request.model.vocab = 8192;
  CLI::App* cmd = root.add_subcommand(
      "plan",
      "Rank every data x tensor x pipeline layout of a model on W ranks by predicted step time, within a "
      "memory cap per rank (Tier I planner; no MPI).");
  cmd->footer(
      "Example: build/triad plan --layers 6 --d-model 384 --heads 6 --seq-len 256 --vocab 16384 --batch 8 "
      "\\\n"
      "           --ranks 4 --memory-per-rank 2GiB --topology topology.json\n"
      "Layouts: dp x tp x pp = --ranks, tp dividing --heads and --vocab, pp <= --layers; micro-batches\n"
      "(the divisors of batch / dp up to 16), schedule 1f1b/gpipe, ZeRO-1 and fp16 gradients when dp > 1.\n"
      "Each rank's speed and the links come from --topology (mpirun -np W triad probe --out FILE), else\n"
      "from --gflops or a quick SGEMM here, with shared-memory links. The cost model and its measured\n"
      "constants: src/triad/parallel/planner.h; predicted vs measured:\n"
      "docs/results/2026-12-04-layout-planner.md.");
  add_config_option(*cmd);
  add_options(*cmd, GptConfig::options(), flags->request.model);
  cmd->add_option("--vocab", flags->request.model.vocab, "Vocabulary size V (the data's tokenizer's)")
      ->check(positive());
  cmd->add_option("--batch", flags->request.batch, "Global batch in sequences per optimizer step")
      ->required()
      ->check(positive());
  cmd->add_option("--ranks", flags->request.ranks, "Ranks W of the job (mpirun -np W)")
      ->required()
      ->check(positive());
  cmd->add_option("--memory-per-rank", flags->memory, "Memory a rank may use: 512MiB, 2GiB, 1.5GB")
      ->type_name("SIZE");
  cmd->add_option("--topology", flags->topology, "Topology JSON of the W ranks (triad probe)")
      ->type_name("FILE");
  cmd->add_option("--gflops", flags->gflops,
                  "Every rank's SGEMM GFLOP/s (one thread), instead of --topology's or a measurement here")
      ->check(positive());
  cmd->add_option("--bucket-mb", flags->request.bucket_mb,
                  "Gradient bucket size of the runs (train --bucket-mb)")
      ->check(positive());
  cmd->add_option("--top", flags->top, "Layouts to list (0: all)")->check(non_negative());
  cmd->add_flag("--json", flags->json, "Print the ranking as JSON (every layout with its parts) instead");

  return [flags]() {
    parallel::PlanRequest& r = flags->request;
    const std::optional<double> cap = parse_bytes(flags->memory);
    if (!cap || *cap <= 0) {
      fail_usage("--memory-per-rank {}: expected a size like 512MiB, 2GiB or 1.5GB", flags->memory);
    }
    r.memory_cap = *cap;
    const parallel::CostModel cost;
    std::string speed;
    comm::Topology topology;
    if (!flags->topology.empty()) {
      try {
        topology = comm::load_topology(flags->topology);
      } catch (const Error& e) {
        fail_usage("--topology: {}", e.what());
      }
      if (topology.world != r.ranks) {
        fail_usage("--topology {} describes {} ranks; --ranks is {}", flags->topology, topology.world,
                   r.ranks);
      }
      speed = fmt::format("links and speeds of {}", flags->topology);
      if (flags->gflops > 0) {
        for (comm::RankInfo& rank : topology.ranks) rank.sgemm_gflops = flags->gflops;
        speed += fmt::format(" but {:g} GFLOP/s per rank (--gflops)", flags->gflops);
      }
    } else {
      const bool measured = flags->gflops <= 0;
      const double gflops = measured ? comm::measure_sgemm_gflops(512) : flags->gflops;
      topology = parallel::uniform_topology(r.ranks, gflops, cost);
      speed = fmt::format("{:.1f} GFLOP/s per rank ({}), shared-memory links", gflops,
                          measured ? "SGEMM measured here" : "--gflops");
    }
    const std::vector<parallel::PlannedLayout> ranked = parallel::plan_layouts(r, topology, cost);
    if (!ranked[0].fits) {
      // Ranked by memory after those that fit: the first is the smallest.
      fail_usage(
          "no layout fits --memory-per-rank {}: the smallest needs {} per rank ({}); give at least that, "
          "more "
          "--ranks or a smaller --batch",
          flags->memory, bytes_text(ranked[0].memory.total()), ranked[0].choice.name());
    }
    const std::vector<std::string> shared_cores = parallel::shared_core_nodes(topology);
    const std::string not_timed = parallel::untimed(topology, r.model);
    if (!topology.micro_step_of.is_null() && !not_timed.empty())
      log_warn("plan: the topology's timing of a model alone and at once is not used: {}", not_timed);
    const std::vector<std::string> contention = parallel::timing_lines(topology, r.model, cost);
    if (!flags->json) {
      print_table(ranked, *flags, speed, shared_cores, contention);
      return 0;
    }
    nlohmann::json layouts = nlohmann::json::array();
    for (const parallel::PlannedLayout& p : ranked) layouts.push_back(parallel::to_json(p));
    fmt::print("{}\n",
               nlohmann::json{{"format", "triad-plan/1"},
                              {"model", r.model.to_json()},
                              {"batch", r.batch},
                              {"ranks", r.ranks},
                              {"memory_per_rank", std::llround(r.memory_cap)},
                              {"topology", flags->topology},
                              {"speed", speed},
                              {"cost_model", cost.to_json()},
                              {"choice", ranked[0].choice.name()},
                              {"train_flags", model_flags(r) + " " + ranked[0].choice.train_flags()},
                              {"shared_cores", shared_cores},
                              {"shared_cores_note", shared_cores.empty() ? "" : parallel::kSharedCoresNote},
                              {"at_once", contention},
                              {"at_once_note", contention.empty() ? "" : parallel::kTimingNote},
                              {"layouts", layouts}}
                   .dump(2));
    return 0;
  };
}

}  // namespace triad::cli
