#pragma once
// What `triad launch` (supervisor.h) needs to know about the command it supervises and how it ended, as
// plain functions over argument lists and exit statuses.
//
// The command is a launcher line ending in a triad train invocation, or the invocation alone:
//   mpirun -np 2 build/triad train --out RUN ...     srun -n 4 triad train --resume RUN ...
// The words from "train" on (its program being a word whose file name is "triad") are train's; the ones
// before the program are the launcher's, where the rank count is read from -np/-n/--np/--n/-c N or
// --ntasks N / --ntasks=N.

#include <string>
#include <vector>

#include "triad/train/options.h"

namespace triad {

struct TrainCommand {
  std::vector<std::string> words;  // the whole command, as given
  int program = -1;                // the index of the triad program; "train" follows it
  std::string run_dir;             // the value of --out or --resume
  bool resumes = false;            // given as --resume RUN (rather than --out RUN)
  bool forces = false;             // with --force: start the run afresh even when it has checkpoints
  int ranks_word = -1;             // the index of the rank count's value in the launcher's words; -1: none
  int ranks = 1;                   // that count (1 without a launcher)
  std::string audit_key;           // --audit-key, to sign the heads after a restart entry; empty: none

  // The words after "train".
  std::vector<std::string> train_args() const;
  // The command that continues the run from its newest valid checkpoint on `ranks` ranks: --out RUN
  // becomes --resume RUN, and --force and --checkpoint are dropped (the newest valid one is wanted).
  std::vector<std::string> resume_words(int ranks) const;
  // The command that starts the run again from step 0 on `ranks` ranks (no valid checkpoint yet): the
  // original, with --force so that train replaces what the failed attempt wrote of the run.
  std::vector<std::string> start_over_words(int ranks) const;
};

// Reads `words`; usage errors say what is missing (no triad train in it, no --out/--resume RUN on its
// command line).
TrainCommand parse_train_command(const std::vector<std::string>& words);

// How an attempt ended, from its wait status, and what the supervisor does about it.
enum class AttemptEnd {
  kCompleted,  // exit 0: done
  kUsage,      // exit 2: the command is wrong; running it again cannot help
  kHalted,     // exit 3: a policy rule halted the run; a person decides what happens next
  kNotRun,     // exit 126/127: the shell's "cannot execute" / "not found"
  kPreempted,  // exit 75: stopped cleanly by SIGTERM/SIGINT with a checkpoint; retried
  kFailed,     // anything else (1, a signal, mpirun's 128 + N for a rank it lost): retried
};
struct AttemptResult {
  AttemptEnd end = AttemptEnd::kFailed;
  int exit_code = 1;        // as a shell reports it: the code, or 128 + N when killed by signal N
  std::string description;  // "exit code 137: a process was killed by signal 9 (SIGKILL)"
};
AttemptResult classify_wait_status(int wait_status);
bool retryable(AttemptEnd end);

// The largest rank count below `ranks` and at least `min_ranks` at which `options` is a valid layout (the
// global batch divides over the data-parallel ranks, tensor x pipeline divides the world, ...), or 0 when
// there is none. `skipped` gets one line per count passed over, saying why.
int next_elastic_ranks(const TrainOptions& options, int ranks, int min_ranks,
                       std::vector<std::string>* skipped);

// The command as one line a shell would read, for messages and the audit log.
std::string shell_line(const std::vector<std::string>& words);

}  // namespace triad
