#include <ctime>
#include <filesystem>
#include <memory>

#include "triad/cli/cli.h"
#include "triad/cli/options.h"
#include "triad/comm/collectives.h"
#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/core/parallel.h"
#include "triad/data/prepare.h"
#include "triad/train/governance_observer.h"
#include "triad/train/metrics.h"
#include "triad/train/stop_signal.h"
#include "triad/train/trainer.h"

namespace triad::cli {

namespace {

std::string default_run_dir() {
  std::time_t t = std::time(nullptr);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "runs/run-%Y%m%d-%H%M%S", std::localtime(&t));
  return buffer;
}

// Without --data: the bundled corpus, prepared once into data/bundled.
std::string bundled_data(int threads) {
  std::string dir = data_path("bundled");
  if (std::filesystem::exists(std::filesystem::path(dir) / "manifest.json")) return dir;
  std::string corpus = data_path("corpus");
  if (!std::filesystem::is_directory(corpus)) {
    fail_usage(
        "no --data given and the bundled corpus is missing ({}); run scripts/fetch-corpus or pass --data DIR",
        corpus);
  }
  log_info("preparing the bundled corpus {} into {} (once)", corpus, dir);
  PrepareOptions p;
  p.inputs = {corpus};
  p.out_dir = dir;
  p.threads = threads;
  p.blocklist_path = data_path("blocklist/en.txt");
  p.force = true;
  run_prepare(p);
  return dir;
}

}  // namespace

Runner add_train_command(CLI::App& root) {
  auto o = std::make_shared<TrainOptions>();
  o->threads = default_threads();
  auto resume = std::make_shared<std::string>();
  auto checkpoint = std::make_shared<std::string>();
  auto force = std::make_shared<bool>(false);

  CLI::App* cmd =
      root.add_subcommand("train", "Train a GPT on prepared data, with checkpoints, metrics and resume.");
  cmd->footer(
      "With no --data, trains on the bundled corpus (prepared into data/bundled on first use).\n"
      "RUN holds run.json, tokenizer.model, metrics.jsonl and checkpoints/step_N/. Continue a run with\n"
      "'triad train --resume RUN [--steps S]'. Data parallel: 'mpirun -np N triad train --out RUN ...' "
      "(each\n"
      "rank takes batch / N sequences of every batch; rank 0 writes RUN). See docs/training.md.");
  add_config_option(*cmd);
  cmd->add_option("--resume", *resume,
                  "Continue RUN from its newest valid checkpoint (with --steps: up to that total)")
      ->type_name("RUN");
  cmd->add_option("--checkpoint", *checkpoint,
                  "With --resume: continue from this checkpoint (step_N, or its path) instead of the newest")
      ->type_name("CKPT");
  cmd->add_flag(
      "--force", *force,
      "Start over in an existing --out that is a triad run (deletes its contents; refuses a directory "
      "holding anything triad did not write)");
  add_options(*cmd, TrainOptions::options(), *o);
  // Governance (docs/governance.md): every run keeps RUN/audit/; these are per invocation, not run options.
  auto gov = std::make_shared<GovernanceFlags>();
  cmd->add_option(
         "--audit-key", gov->audit_key,
         "Sign the audit log's tree heads with this private key (NAME.key from 'triad audit keygen')")
      ->type_name("FILE")
      ->group("Governance");
  cmd->add_option("--policy", gov->policy, "Policy rules (alert, halt, review) over the metrics; TOML")
      ->type_name("FILE.toml")
      ->group("Governance");

  return [o, resume, checkpoint, force, cmd, gov]() {
    if (!checkpoint->empty() && resume->empty()) fail_usage("--checkpoint only applies with --resume RUN");
    check_threads(o->threads);  // before the run directory exists (a resumed run's own count: Trainer)
    auto audit = std::make_unique<AuditObserver>(*gov);  // a bad key or policy fails before any work
    install_stop_handlers();  // SIGTERM/SIGINT: a checkpoint at the next step, then exit code 75
    // Collective under mpirun: every rank starts here.
    std::unique_ptr<comm::Context> context = comm::Context::open(comm::context_options(o->comm));
    if (context->rank() != 0) set_quiet(true);
    std::unique_ptr<Trainer> trainer;
    if (!resume->empty()) {
      trainer = Trainer::resume(*context, {.run_dir = *resume,
                                           .checkpoint = *checkpoint,
                                           .given = *o,
                                           .given_names = given_options(*cmd, TrainOptions::options())});
    } else {
      if (o->data_dir.empty()) {
        if (context->rank() == 0) {
          comm::Context::BusyScope busy(*context, "preparing the bundled corpus");
          o->data_dir = bundled_data(o->threads);
        }
        comm::barrier(*context, "waiting for rank 0 to prepare the bundled corpus");
        o->data_dir = data_path("bundled");
      }
      if (o->out_dir.empty()) {
        if (context->world() > 1) fail_usage("under mpirun, give the run directory with --out RUN");
        o->out_dir = default_run_dir();
      }
      if (cmd->get_option("--topk-warmup")->count() == 0) o->comm.topk_warmup = o->default_topk_warmup();
      trainer = Trainer::start(*context, *o, *force);
    }
    if (!trainer->is_root()) return trainer->run();
    trainer->add_observer(std::make_unique<ProgressLine>());
    trainer->add_observer(std::make_unique<MetricsLog>(trainer->run_dir(), trainer->step()));
    trainer->add_observer(std::move(audit));
    return trainer->run();
  };
}

}  // namespace triad::cli
