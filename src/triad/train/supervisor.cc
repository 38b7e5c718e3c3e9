#include "triad/train/supervisor.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/exit_code.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/governance/audit_events.h"
#include "triad/governance/audit_log.h"
#include "triad/train/checkpoint.h"
#include "triad/train/resume_point.h"

namespace triad {

namespace fs = std::filesystem;
namespace {

// The supervisor's own SIGTERM/SIGINT/SIGUSR1: counted here, passed to the job by the waiting loop.
volatile std::sig_atomic_t g_signals = 0;
volatile std::sig_atomic_t g_last_signal = 0;

void on_signal(int signal) {
  g_last_signal = signal;
  g_signals = g_signals + 1;
}

void install_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGINT, SIGUSR1}) sigaction(signal, &action, nullptr);
}

// Starts `words` in a process group of its own, stdin from /dev/null (a background group that read the
// terminal would be stopped).
pid_t spawn(const std::vector<std::string>& words) {
  std::vector<char*> argv;
  for (const std::string& w : words) argv.push_back(const_cast<char*>(w.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) fail("triad launch: cannot start a process: {}", errno_text());
  if (pid == 0) {
    ::setpgid(0, 0);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    ::execvp(argv[0], argv.data());
    const std::string message =
        fmt::format("triad: error: launch: cannot run {}: {}\n", words[0], errno_text());
    [[maybe_unused]] ssize_t n = ::write(STDERR_FILENO, message.data(), message.size());
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so that a signal forwarded at once finds the group
  return pid;
}

// Waits for the job, passing on each SIGTERM/SIGINT the supervisor receives to the launcher (not its
// group: the launcher signals its ranks, and a rank must see one signal per request). The first goes as
// SIGUSR1, which mpirun forwards to every rank at once and which train takes as a stop request
// (stop_signal.h); mpirun would pass a SIGTERM on only after its odls_base_sigkill_timeout and SIGKILL the
// ranks as long after. A second goes as itself: train exits at once. Returns the wait status.
int wait_forwarding(pid_t child) {
  int forwarded = g_signals;
  for (;;) {
    while (forwarded < g_signals) {
      ::kill(child, forwarded == 0 ? SIGUSR1 : static_cast<int>(g_last_signal));
      ++forwarded;
    }
    int status = 0;
    const pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done == child) return status;
    if (done < 0 && errno != EINTR) fail("triad launch: waiting for the job: {}", errno_text());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Sleeps `seconds`; false when a signal asked the supervisor to stop meanwhile.
bool sleep_unless_signalled(double seconds) {
  const int signals = g_signals;
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    if (g_signals != signals) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return g_signals == signals;
}

// How many times training started (run_start entries of the audit log); 0 without a log.
size_t training_starts(const std::string& run_dir) {
  const std::string path = audit_log_path(run_dir);
  if (!path_exists(path)) return 0;
  size_t starts = 0;
  for (const std::string& line : read_audit_lines(path).lines) {
    auto entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("kind", "") == "run_start") ++starts;
  }
  return starts;
}

// The step of the newest checkpoint directory, valid or not; -1 when there is none.
int newest_checkpoint_step(const std::string& run_dir) {
  auto dirs = checkpoint_dirs(run_dir);
  return dirs.empty() ? -1 : dirs.back().first;
}

// The step `train --resume` will continue from (the newest valid checkpoint), or none.
std::optional<int> resume_step(const std::string& run_dir) {
  if (checkpoint_dirs(run_dir).empty()) return std::nullopt;
  try {
    return find_resume_point(run_dir, "").manifest.state.step;
  } catch (const Error&) {
    return std::nullopt;
  }
}

// Whether training started during the attempt (a run_start after the first `starts_before`) and its last
// run_end says "preempted": the ranks stopped cleanly, whatever code the launcher exits with (mpirun that
// passed a SIGTERM on exits with 1).
bool recorded_preemption(const std::string& run_dir, size_t starts_before) {
  const std::string path = audit_log_path(run_dir);
  if (!path_exists(path)) return false;
  size_t starts = 0;
  std::string status;
  for (const std::string& line : read_audit_lines(path).lines) {
    auto entry = nlohmann::json::parse(line, nullptr, false);
    if (!entry.is_object()) continue;
    const std::string kind = entry.value("kind", "");
    if (kind == "run_start") {
      ++starts;
      status.clear();
    } else if (kind == "run_end" && entry["payload"].is_object()) {
      status = entry["payload"].value("status", "");
    }
  }
  return starts > starts_before && status == "preempted";
}

// The run's own options once it has started (run.json), else the command's.
TrainOptions options_of_run(const std::string& run_dir, const TrainOptions& command_options) {
  const std::string path = (fs::path(run_dir) / "run.json").string();
  if (!path_exists(path)) return command_options;
  try {
    return TrainOptions::from_json(read_json_file(path).at("options"), path);
  } catch (const std::exception&) {
    return command_options;
  }
}

// Appends `entries` (restart payloads) to the run's audit log and writes a head; a log that cannot be
// opened is a warning, and the relaunch goes ahead.
void log_restarts(const TrainCommand& command, std::vector<nlohmann::json>* entries) {
  if (entries->empty() || !path_exists(audit_log_path(command.run_dir))) return;
  try {
    AuditLog log = AuditLog::open(command.run_dir, {.host = "", .rank = 0, .recover_torn_tail = true});
    for (const nlohmann::json& payload : *entries) log_restart(log, payload);
    entries->clear();
    if (log.signing_keys().empty()) {
      log.write_head();
    } else if (!command.audit_key.empty()) {
      const NoteSigner signer = load_signer(command.audit_key);
      log.write_head(&signer);
    }  // else the next attempt's first head covers the entries
  } catch (const std::exception& e) {
    log_warn("launch: could not log the restart in {}: {}", audit_log_path(command.run_dir), e.what());
  }
}

}  // namespace

int supervise(const TrainCommand& command, const SupervisorOptions& o) {
  install_handlers();
  const std::string& run = command.run_dir;
  std::vector<std::string> words = command.words;
  int ranks = command.ranks;
  int failures = 0;           // counted against --max-restarts
  int failures_in_a_row = 0;  // since the last attempt that wrote a newer checkpoint: the back-off's exponent
  std::vector<nlohmann::json> unlogged;  // restarts that started the run over, logged when that attempt ends
  // Running the same command again (a requeued batch job) continues the run rather than failing on it.
  if (const std::optional<int> from = resume_step(run); from && !command.resumes && !command.forces) {
    log_info("launch: {} has a valid checkpoint of step {}: continuing it", run, *from);
    words = command.resume_words(ranks);
  }
  for (int attempt = 1;; ++attempt) {
    const size_t starts_before = training_starts(run);
    const int checkpoint_before = newest_checkpoint_step(run);
    log_info("launch: attempt {}: {}", attempt, shell_line(words));
    const auto started = Clock::now();
    AttemptResult r = classify_wait_status(wait_forwarding(spawn(words)));
    if (r.end == AttemptEnd::kFailed && recorded_preemption(run, starts_before)) {
      r.end = AttemptEnd::kPreempted;
      r.description += "; the run recorded a preemption with a checkpoint";
    }
    const double seconds = seconds_since(started);
    const bool advanced = newest_checkpoint_step(run) > checkpoint_before;

    if (g_signals > 0) {  // the supervisor was told to stop: the job had the signal too
      log_restarts(command, &unlogged);
      log_warn("launch: stopped by SIG{} after attempt {} ({}); the same 'triad launch' command continues {}",
               sigabbrev_np(g_last_signal), attempt, r.description, run);
      return r.end == AttemptEnd::kPreempted ? kExitPreempted : r.exit_code;
    }
    if (!retryable(r.end)) {
      log_restarts(command, &unlogged);
      if (r.end == AttemptEnd::kCompleted) {
        log_info("launch: completed in {} attempt{} ({} failure{})", attempt, attempt > 1 ? "s" : "",
                 failures, failures == 1 ? "" : "s");
      } else {
        log_warn("launch: attempt {} ended with {}: not retried", attempt, r.description);
      }
      return r.exit_code;
    }
    const bool counted = !(r.end == AttemptEnd::kPreempted && advanced);
    if (counted) {
      ++failures;
      failures_in_a_row = advanced ? 1 : failures_in_a_row + 1;
    }
    log_warn("launch: attempt {} ended after {:.1f} s with {}", attempt, seconds, r.description);
    auto give_up = [&](const std::string& why) {
      log_restarts(command, &unlogged);
      log_warn("launch: giving up: {}", why);
      return r.exit_code;
    };
    if (counted && failures > o.max_restarts)
      return give_up(fmt::format("{} failures, and --max-restarts is {}", failures, o.max_restarts));

    // Elastic: a job that never got to training is taken to be missing ranks.
    int next_ranks = ranks;
    if (o.min_ranks > 0 && command.ranks_word >= 0 && training_starts(run) == starts_before) {
      std::vector<std::string> skipped;
      next_ranks = next_elastic_ranks(options_of_run(run, o.command_options), ranks, o.min_ranks, &skipped);
      for (const std::string& s : skipped) log_info("launch: not on {}", s);
      if (next_ranks == 0) {
        return give_up(
            fmt::format("the job did not start on {} ranks, and no count down to --min-ranks {} fits "
                        "the run",
                        ranks, o.min_ranks));
      }
      log_warn("launch: the job did not start on {} ranks: relaunching on {} (--min-ranks {})", ranks,
               next_ranks, o.min_ranks);
    }

    const std::optional<int> from = resume_step(run);
    if (!from && !checkpoint_dirs(run).empty()) {
      return give_up(
          fmt::format("{} has checkpoints but none is valid ('triad train --resume {}' says why)", run, run));
    }
    if (!from && command.resumes) return give_up(fmt::format("{} has no checkpoint to resume from", run));
    const double backoff =
        counted ? std::min(o.max_backoff_s, o.backoff_s * std::pow(2.0, failures_in_a_row - 1)) : 0.0;
    std::vector<std::string> next =
        from ? command.resume_words(next_ranks) : command.start_over_words(next_ranks);
    nlohmann::json payload = {{"attempt", attempt + 1},
                              {"reason", r.end == AttemptEnd::kPreempted ? "preempted" : "failed"},
                              {"exit_code", r.exit_code},
                              {"exit", r.description},
                              {"counted", counted},
                              {"failures", failures},
                              {"max_restarts", o.max_restarts},
                              {"ranks", next_ranks},
                              {"previous_ranks", ranks},
                              {"backoff_s", backoff},
                              {"command", shell_line(next)}};
    if (from) {
      payload["resume_from_step"] = *from;
    } else {
      payload["started_over"] = true;
    }
    unlogged.push_back(payload);
    if (from) log_restarts(command, &unlogged);  // a start over waits: its --force begins a new log
    log_warn(
        "launch: {} in {:.1f} s, {}",
        counted ? fmt::format("restart {} of {}", failures, o.max_restarts) : "relaunch after the preemption",
        backoff,
        from ? fmt::format("from the checkpoint of step {}", *from)
             : std::string("from step 0 (no checkpoint yet)"));
    if (!sleep_unless_signalled(backoff)) {
      log_restarts(command, &unlogged);
      log_warn("launch: stopped by SIG{} before relaunching; the same 'triad launch' command continues {}",
               sigabbrev_np(g_last_signal), run);
      return kExitPreempted;
    }
    words = std::move(next);
    ranks = next_ranks;
  }
}

}  // namespace triad
