#include "triad/train/relaunch.h"

#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/exit_code.h"

namespace triad {

namespace {

// The launcher flags that give the number of ranks, followed by the count as the next word.
bool is_rank_flag(const std::string& word) {
  return word == "-np" || word == "-n" || word == "--np" || word == "--n" || word == "-c" ||
         word == "--ntasks";
}

// The value of train's flag `name` ("--out") at words[i], as "--out RUN" or "--out=RUN"; sets *next to the
// index after it. Empty when words[i] is not that flag.
std::string flag_value(const std::vector<std::string>& words, size_t i, const std::string& name,
                       size_t* next) {
  const std::string& word = words[i];
  if (word.starts_with(name + "=")) {
    *next = i + 1;
    return word.substr(name.size() + 1);
  }
  if (word == name && i + 1 < words.size()) {
    *next = i + 2;
    return words[i + 1];
  }
  return "";
}

std::string signal_text(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev ? fmt::format("signal {} (SIG{})", signal, abbrev) : fmt::format("signal {}", signal);
}

// The words of `command` with the rank count set to `ranks`, and train's words for a resume (--resume RUN
// for --out RUN; no --force or --checkpoint) or for a start over (with --force).
std::vector<std::string> rewrite(const TrainCommand& command, int ranks, bool to_resume) {
  std::vector<std::string> out(command.words.begin(), command.words.begin() + command.program + 2);
  if (command.ranks_word >= 0) {
    std::string& count = out[command.ranks_word];
    const size_t eq = count.find('=');
    count = eq == std::string::npos ? std::to_string(ranks) : count.substr(0, eq + 1) + std::to_string(ranks);
  }
  const std::vector<std::string> args = command.train_args();
  bool forced = false;
  for (size_t i = 0; i < args.size();) {
    size_t next = i + 1;
    const bool out_flag = !flag_value(args, i, "--out", &next).empty();
    const bool checkpoint = !flag_value(args, i, "--checkpoint", &next).empty();
    const bool resume = !flag_value(args, i, "--resume", &next).empty();
    if (args[i] == "--") {  // nothing after it is a flag
      out.insert(out.end(), args.begin() + i, args.end());
      break;
    }
    if (to_resume && (out_flag || resume || checkpoint || args[i] == "--force")) {
      i = next;
      continue;
    }
    forced |= args[i] == "--force";
    out.insert(out.end(), args.begin() + i, args.begin() + next);
    i = next;
  }
  if (to_resume) {
    out.insert(out.begin() + command.program + 2, {"--resume", command.run_dir});
  } else if (!forced) {
    out.insert(out.begin() + command.program + 2, "--force");
  }
  return out;
}

}  // namespace

std::vector<std::string> TrainCommand::train_args() const {
  return {words.begin() + program + 2, words.end()};
}

std::vector<std::string> TrainCommand::resume_words(int ranks) const {
  return rewrite(*this, ranks, true);
}

std::vector<std::string> TrainCommand::start_over_words(int ranks) const {
  return rewrite(*this, ranks, false);
}

TrainCommand parse_train_command(const std::vector<std::string>& words) {
  TrainCommand c;
  c.words = words;
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    if (words[i + 1] == "train" && std::filesystem::path(words[i]).filename() == "triad") {
      c.program = static_cast<int>(i);
      break;
    }
  }
  if (c.program < 0) {
    fail_usage(
        "triad launch: the command after -- must run 'triad train' (e.g. -- mpirun -np 2 build/triad train "
        "--out RUN ...); got '{}'",
        shell_line(words));
  }
  for (int i = 0; i < c.program; ++i) {
    std::string count;
    if (is_rank_flag(words[i]) && i + 1 < c.program) {
      count = words[i + 1];
      c.ranks_word = i + 1;
    } else if (words[i].starts_with("--ntasks=") || words[i].starts_with("--np=")) {
      count = words[i].substr(words[i].find('=') + 1);
      c.ranks_word = i;
    } else {
      continue;
    }
    try {
      size_t used = 0;
      c.ranks = std::stoi(count, &used);
      if (used != count.size() || c.ranks < 1) throw std::invalid_argument(count);
    } catch (const std::exception&) {
      fail_usage("triad launch: the launcher's rank count '{}' ({}) is not a positive whole number", count,
                 words[i]);
    }
  }
  const std::vector<std::string> args = c.train_args();
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") break;
    size_t next = i;
    if (std::string run = flag_value(args, i, "--out", &next); !run.empty()) c.run_dir = run;
    if (std::string run = flag_value(args, i, "--resume", &next); !run.empty()) {
      c.run_dir = run;
      c.resumes = true;
    }
    if (std::string key = flag_value(args, i, "--audit-key", &next); !key.empty()) c.audit_key = key;
    c.forces |= args[i] == "--force";
  }
  if (c.run_dir.empty()) {
    fail_usage(
        "triad launch: give the run directory on the train command line (--out RUN, or --resume RUN): the "
        "supervisor resumes it after a failure");
  }
  return c;
}

AttemptResult classify_wait_status(int status) {
  AttemptResult r;
  if (WIFSIGNALED(status)) {
    r.exit_code = 128 + WTERMSIG(status);
    r.description = fmt::format("killed by {}", signal_text(WTERMSIG(status)));
    r.end = AttemptEnd::kFailed;
    return r;
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  const int code = r.exit_code;
  switch (code) {
    case kExitOk:
      r.end = AttemptEnd::kCompleted;
      r.description = "exit code 0: completed";
      return r;
    case kExitUsage:
      r.end = AttemptEnd::kUsage;
      r.description = "exit code 2: a usage error (the command line or config is wrong)";
      return r;
    case kExitHalted:
      r.end = AttemptEnd::kHalted;
      r.description = "exit code 3: a --policy rule halted training";
      return r;
    case kExitPreempted:
      r.end = AttemptEnd::kPreempted;
      r.description = "exit code 75: preempted (SIGTERM, SIGINT or SIGUSR1), stopped with a checkpoint";
      return r;
    case 126:
    case 127:
      r.end = AttemptEnd::kNotRun;
      r.description = fmt::format("exit code {}: the command could not be run", code);
      return r;
  }
  r.end = AttemptEnd::kFailed;
  // mpirun reports a rank it lost to signal N as 128 + N.
  r.description = code > 128 && code < 128 + 65
                      ? fmt::format("exit code {}: a process was killed by {}", code, signal_text(code - 128))
                      : fmt::format("exit code {}: {}", code,
                                    code == kExitRuntime ? "a runtime error (a rank failed, or lost a peer)"
                                                         : "a failure");
  return r;
}

bool retryable(AttemptEnd end) {
  return end == AttemptEnd::kFailed || end == AttemptEnd::kPreempted;
}

int next_elastic_ranks(const TrainOptions& options, int ranks, int min_ranks,
                       std::vector<std::string>* skipped) {
  for (int world = ranks - 1; world >= std::max(1, min_ranks); --world) {
    try {
      options.validate(world);
      return world;
    } catch (const Error& e) {
      skipped->push_back(fmt::format("{} ranks: {}", world, e.what()));
    }
  }
  return 0;
}

std::string shell_line(const std::vector<std::string>& words) {
  std::string line;
  for (const std::string& word : words) {
    if (!line.empty()) line += ' ';
    const bool plain = !word.empty() && word.find_first_not_of(
                                            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVW"
                                            "XYZ0123456789_-+=./:,@%") == std::string::npos;
    if (plain) {
      line += word;
      continue;
    }
    line += '\'';
    for (char ch : word) line += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    line += '\'';
  }
  return line;
}

}  // namespace triad
