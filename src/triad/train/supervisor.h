#pragma once
// `triad launch`: runs a training job and, when it fails for a reason that another attempt can get past (a
// rank killed, a peer lost, a comm timeout, a preemption), runs it again from the run's newest valid
// checkpoint. docs/operations.md is the user's guide; the rules:
//
// - Attempt 1 runs the command as given. Each later one continues the run: --out RUN becomes --resume RUN
//   (train then takes the newest valid checkpoint, setting aside, with a warning each, those that fail
//   their checks). A run that has no checkpoint directory yet starts over instead (--force added); one
//   whose checkpoints are all invalid is not relaunched: a person should look.
// - Retried: exit code 1, a death by signal (mpirun reports a rank it lost to signal N as 128 + N), any
//   code not named here, and 75 (preempted, core/exit_code.h). Not retried: 0, 2 (usage), 3 (policy
//   halt), 126/127 (the command cannot be run).
// - Failures count against --max-restarts and wait --backoff seconds, doubled after each failure in a row
//   (an attempt that wrote a newer checkpoint ends the row), at most --max-backoff. A preemption that
//   wrote a newer checkpoint is relaunched at once and not counted; one that did not is a failure.
// - Elastic (--min-ranks K): an attempt that fails before training starts (no new run_start in the audit
//   log: the launcher could not start every rank) is taken to mean the ranks are not all there; the next
//   attempt uses the largest smaller count >= K at which the run's layout is valid (the batch divides over
//   the data-parallel ranks, and so on), naming each count it passes over. The run's checkpoints hold whole
//   tensors and resume at any layout. It never grows back.
// - Each relaunch is logged in the run's audit log as a "restart" entry (governance/audit_events.h),
//   followed by a tree head (signed with the command's --audit-key when the log's heads are signed). A
//   restart that started the run over is logged once that attempt ends, since its --force began a new log.
// - SIGTERM, SIGINT or SIGUSR1 to the supervisor is passed to the job as SIGUSR1 (mpirun passes it on to
//   every rank at once; they stop with a checkpoint: train/stop_signal.h), a second one as itself (the
//   ranks exit at once), and the supervisor then exits without relaunching: 75 after a clean stop.
//
// The job runs in its own process group with stdin from /dev/null, so a Ctrl-C at the terminal reaches
// the ranks once, through the supervisor and the launcher, not also directly.

#include <string>

#include "triad/train/options.h"
#include "triad/train/relaunch.h"

namespace triad {

struct SupervisorOptions {
  int max_restarts = 3;
  double backoff_s = 10;
  double max_backoff_s = 300;
  int min_ranks = 0;  // 0: always the command's rank count
  // The command's training options as its flags give them: what the elastic rule checks a smaller rank
  // count against until the run has a run.json.
  TrainOptions command_options;
};

// Runs `command` until it completes or ends in a way that is not retried; returns the exit code to exit
// with (the last attempt's, as a shell reports it).
int supervise(const TrainCommand& command, const SupervisorOptions& options);

}  // namespace triad
