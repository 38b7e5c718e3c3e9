#include "triad/search/trial.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad::search {

namespace fs = std::filesystem;

namespace {

// The last non-empty line of a file (the error a failed run printed).
std::string last_line(const std::string& path) {
  if (!path_exists(path)) return "";
  std::string text = read_file(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  const size_t start = text.rfind('\n');
  return start == std::string::npos ? text : text.substr(start + 1);
}

// Runs argv with stdout and stderr into `log`; returns the wait status. The trial gets SIGTERM when the
// search dies (PR_SET_PDEATHSIG), so a killed search leaves no trial training on (SIGTERM: the trainer
// checkpoints at its next step and exits) into a directory the resumed search will clear.
int spawn_and_wait(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) fail("cannot create {}: {}", log, errno_text());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out);
    fail("cannot run {}: {}", argv[0], errno_text());
  }
  if (pid == 0) {  // only async-signal-safe calls until execv
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the search died before prctl
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) fail("waiting for {}: {}", argv[0], errno_text());
  }
  return status;
}

}  // namespace

std::optional<std::map<std::string, double>> read_run_metrics(const std::string& run_dir,
                                                              const std::vector<std::string>& names,
                                                              std::string* error,
                                                              std::string* energy_source) {
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  if (!path_exists(path)) {
    *error = path + ": missing";
    return std::nullopt;
  }
  std::map<std::string, double> found;
  const std::string text = read_file(path);
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const auto record = nlohmann::json::parse(text.substr(begin, end - begin), nullptr, false);
    begin = end + 1;
    if (!record.is_object()) continue;
    if (energy_source && record.contains("energy_source") && record["energy_source"].is_string())
      *energy_source = record["energy_source"].get<std::string>();
    for (const std::string& name : names) {
      auto it = record.find(name);
      if (it != record.end() && it->is_number()) found[name] = it->get<double>();  // later records win
    }
  }
  for (const std::string& name : names) {
    if (!found.count(name)) {
      *error = fmt::format("{}: no record has a numeric \"{}\"", path, name);
      return std::nullopt;
    }
  }
  return found;
}

TrialOutcome run_trial(const std::string& binary, const std::vector<std::string>& args,
                       const std::string& run_dir, const std::vector<std::string>& metric_names) {
  std::error_code ec;
  fs::remove_all(run_dir, ec);
  make_dirs(fs::path(run_dir).parent_path().string());
  const std::string log = run_dir + ".log";
  std::vector<std::string> argv = {binary, "train", "--out", run_dir};
  argv.insert(argv.end(), args.begin(), args.end());
  const int status = spawn_and_wait(argv, log);
  TrialOutcome outcome;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string why = WIFEXITED(status) ? fmt::format("exit code {}", WEXITSTATUS(status))
                                              : fmt::format("signal {}", WTERMSIG(status));
    const std::string line = last_line(log);
    outcome.error = line.empty() ? why : fmt::format("{} ({})", line, why);
    return outcome;
  }
  if (auto metrics = read_run_metrics(run_dir, metric_names, &outcome.error, &outcome.energy_source)) {
    outcome.ok = true;
    outcome.metrics = std::move(*metrics);
  }
  return outcome;
}

}  // namespace triad::search
