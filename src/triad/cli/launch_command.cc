// `triad launch [--max-restarts N] [--backoff S] [--min-ranks K] -- COMMAND`: a supervisor that reruns a
// training job from its newest valid checkpoint when it fails (train/supervisor.h, docs/operations.md).
//
// Why a command that wraps the launcher rather than `triad train --max-restarts`: when a rank dies, mpirun
// takes the whole job down with it, every rank included, so no rank is left to restart anything. The
// supervisor has to live outside the job, around `mpirun` (or `srun`), and rerun it as a whole; it also has
// to be the one that changes `-np` for an elastic relaunch.

#include <algorithm>
#include <memory>

#include "triad/cli/cli.h"
#include "triad/cli/options.h"
#include "triad/core/error.h"
#include "triad/train/supervisor.h"

namespace triad::cli {

namespace {

// The training options the command's train flags give (its --config file too), for the elastic rule's
// checks before the run has a run.json. Flags train alone knows (--resume, --force, ...) are passed over;
// a flag train will refuse leaves the defaults here, and the first attempt reports it.
TrainOptions options_on_command_line(const TrainCommand& command) {
  CLI::App app;
  app.allow_extras();
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // as `triad` parses them
  TrainOptions options;
  add_config_option(app);
  add_options(app, TrainOptions::options(), options);
  std::vector<std::string> args = command.train_args();
  std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
  try {
    app.parse(args);
    apply_config_file(app);
  } catch (const CLI::ParseError&) {
    return TrainOptions();
  }
  return options;
}

}  // namespace

Runner add_launch_command(CLI::App& root) {
  auto o = std::make_shared<SupervisorOptions>();
  auto words = std::make_shared<std::vector<std::string>>();
  CLI::App* cmd = root.add_subcommand(
      "launch", "Run a training job, and run it again from its newest valid checkpoint when it fails.");
  cmd->footer(
      "Example: triad launch --max-restarts 5 -- mpirun -np 4 build/triad train --out RUN ...\n"
      "Retried: exit code 1, a rank killed by a signal, 75 (preempted, with a checkpoint). Not retried: 2 "
      "(usage)\n"
      "and 3 (policy halt). Each restart is logged in RUN/audit/. See docs/operations.md.");
  cmd->add_option("--max-restarts", o->max_restarts, "Failures to relaunch after before giving up")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("--backoff", o->backoff_s,
                  "Seconds to wait before the first relaunch; doubled after each failure in a row")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("--max-backoff", o->max_backoff_s, "The longest wait between attempts, in seconds")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("--min-ranks", o->min_ranks,
                  "Elastic: when the job cannot start on its ranks, relaunch on fewer, down to this many "
                  "(0: never fewer)")
      ->check(non_negative())
      ->capture_default_str();
  cmd->add_option("command", *words, "The training job: [mpirun|srun ...] triad train --out RUN ...")
      ->required()
      ->type_name("-- COMMAND")
      ->default_str("");

  return [o, words]() {
    const TrainCommand command = parse_train_command(*words);
    if (o->min_ranks > command.ranks)
      fail_usage("--min-ranks {} is more than the command's {} ranks", o->min_ranks, command.ranks);
    if (o->min_ranks > 0 && command.ranks_word < 0) {
      fail_usage(
          "--min-ranks needs the launcher's rank count on the command line (mpirun -np N, srun -n N or "
          "--ntasks=N)");
    }
    o->command_options = options_on_command_line(command);
    return supervise(command, *o);
  };
}

}  // namespace triad::cli
