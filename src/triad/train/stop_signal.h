#pragma once
// Preemption. SIGTERM (a scheduler taking the machines back), SIGINT (Ctrl-C) or SIGUSR1 (Slurm's
// --signal=USR1@T warning; what mpirun passes on to every rank at once, and so what `triad launch` sends
// it) asks `triad train` to stop: every rank finishes the step it is in, a checkpoint of that step is
// written, and the process exits with kExitPreempted (core/exit_code.h). A second signal ends the process
// at once, by that signal.
//
// mpirun itself turns a SIGTERM or SIGINT into SIGTERM to the ranks only after --mca
// odls_base_sigkill_timeout seconds (1 by default), and SIGKILL as many seconds later: enough for a small
// model's step and checkpoint, not a large one's. It forwards SIGUSR1 at once and kills nobody.
//
// The handler only records the signal (async-signal-safe). The trainer adds "a signal arrived here" into
// the all-reduce every step makes anyway (trainer.cc, sum_over_ranks), so every rank sees the same sum and
// stops after the same step, whichever ranks the signal reached: no rank waits for a peer that has left.

namespace triad {

// Installs the handlers for SIGTERM, SIGINT and SIGUSR1.
void install_stop_handlers();
// The signal that asked this process to stop, or 0.
int stop_signal();
// "SIGTERM", "SIGINT", "SIGUSR1"; "a stop signal on another rank" for 0.
const char* stop_signal_name(int signal);

// For tests: TRIAD_TEST_SIGNAL_AT=RANK:STEP:SIGNAL:COUNT:ONCE_FILE makes the process of launch rank RANK
// (0 without a launcher) send itself SIGNAL (KILL, TERM, INT or USR1) COUNT times just before it trains step
// STEP, unless ONCE_FILE exists; it creates the file first, so that the job the supervisor relaunches does
// not die at the same step again. Kills and preempts a chosen rank at a chosen step, deterministically.
// Does nothing when the variable is unset.
void test_signal_hook(int next_step);

}  // namespace triad
