#include "triad/train/resume_point.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>
#include <optional>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/sha256.h"
#include "triad/governance/audit_log.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

using LoggedFiles = std::map<std::string, LoggedFile>;

fs::path checkpoints_dir(const std::string& run_dir) {
  return fs::path(run_dir) / "checkpoints";
}

// The step_N.tmp-PID/ directories whose process is no longer alive. A live one may be another triad
// writing this run, and is left alone.
std::vector<std::string> dead_temporaries(const std::string& run_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(checkpoints_dir(run_dir), ec)) {
    const long pid = checkpoint_temp_pid(e.path().filename().string());
    if (pid < 0 || !e.is_directory()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// One checkpoint: its manifest when it is valid (resume_point.h), otherwise why not.
struct Checked {
  std::optional<CheckpointManifest> manifest;
  std::string reason, label;
};

Checked check(const std::string& run_dir, const std::string& dir, const LoggedFiles* logged) {
  const std::string manifest = (fs::path(dir) / "manifest.json").string();
  if (!path_exists(manifest))
    return {{}, "no manifest.json: a write cut short, or the file was removed", "no-manifest"};
  if (logged) {
    auto it = logged->find(logged_path(run_dir, manifest));
    if (it == logged->end()) {
      return {
          {},
          "not in the audit log: the run stopped between writing and logging it, or it was put there by hand",
          "unlogged"};
    }
    const std::string digest = sha256_file_hex(manifest);
    if (digest != it->second.sha256) {
      return {{},
              fmt::format("{} has SHA-256 {}, the audit log recorded {}: the manifest was changed", manifest,
                          digest, it->second.sha256),
              "invalid"};
    }
  }
  try {
    return {read_checkpoint_manifest(dir), "", ""};
  } catch (const Error& e) {
    return {{}, e.what(), "invalid"};
  }
}

// --checkpoint's directory: "step_N", or a step_N/ directory of the run given as a path.
std::string chosen_dir(const std::string& run_dir, const std::string& chosen) {
  int step = checkpoint_step(chosen);
  if (step < 0) {
    fs::path path = fs::path(chosen).lexically_normal();
    if (path.filename().empty()) path = path.parent_path();
    std::error_code ec;
    step = checkpoint_step(path.filename().string());
    if (step < 0 || !fs::equivalent(path.parent_path(), checkpoints_dir(run_dir), ec)) {
      fail_usage(
          "--checkpoint {}: not a checkpoint of {} (give step_N, or the path of {}/checkpoints/step_N)",
          chosen, run_dir, run_dir);
    }
  }
  const std::string dir = checkpoint_dir(run_dir, step);
  if (!fs::is_directory(dir)) fail_usage("--checkpoint {}: {} does not exist", chosen, dir);
  return dir;
}

}  // namespace

ResumePoint find_resume_point(const std::string& run_dir, const std::string& chosen) {
  std::vector<std::pair<int, std::string>> dirs = checkpoint_dirs(run_dir);
  std::reverse(dirs.begin(), dirs.end());  // newest first
  if (dirs.empty()) {
    fail_usage("--resume {}: no checkpoint found under {}/checkpoints (nothing to resume)", run_dir, run_dir);
  }
  std::optional<LoggedFiles> logged;
  if (path_exists(audit_log_path(run_dir))) logged = live_checkpoint_files(run_dir);
  const LoggedFiles* log = logged ? &*logged : nullptr;

  ResumePoint point;
  point.dead_temporaries = dead_temporaries(run_dir);
  if (!chosen.empty()) {
    point.dir = chosen_dir(run_dir, chosen);
    Checked c = check(run_dir, point.dir, log);
    if (!c.manifest) fail("--checkpoint {}: {}", point.dir, c.reason);
    point.manifest = std::move(*c.manifest);
    const std::string why = fmt::format("newer than {}, chosen with --checkpoint", point.dir);
    for (const auto& [step, dir] : dirs) {
      if (step > point.manifest.state.step) point.newer.push_back({dir, step, why, "newer"});
    }
    return point;
  }
  for (const auto& [step, dir] : dirs) {
    Checked c = check(run_dir, dir, log);
    if (c.manifest) {
      point.dir = dir;
      point.manifest = std::move(*c.manifest);
      return point;
    }
    point.newer.push_back({dir, step, c.reason, c.label});
  }
  std::string all;
  for (const SetAside& s : point.newer)
    all += fmt::format("; {}: {}", fs::path(s.dir).filename().string(), s.reason);
  fail("--resume {}: no valid checkpoint to resume from{}", run_dir, all);
}

void clear_after_resume_point(const std::string& run_dir, const ResumePoint& point) {
  if (!point.newer.empty()) {
    const fs::path rejected = checkpoints_dir(run_dir) / "rejected";
    make_dirs(rejected.string());
    for (const SetAside& s : point.newer) {
      fs::path target = rejected / fmt::format("step_{:06}-{}", s.step, s.label);
      for (int n = 2; fs::exists(target); ++n)
        target = rejected / fmt::format("step_{:06}-{}-{}", s.step, s.label, n);
      std::error_code ec;
      fs::rename(s.dir, target, ec);
      if (ec) fail("cannot move {} to {}: {}", s.dir, target.string(), ec.message());
      log_warn("skipped {} ({}); moved it to {} so that the run can write step {} again", s.dir, s.reason,
               target.string(), s.step);
    }
    fsync_dir(rejected.string());
    fsync_dir(checkpoints_dir(run_dir).string());
  }
  for (const std::string& temp : point.dead_temporaries) {
    std::error_code ec;
    fs::remove_all(temp, ec);
    if (ec) fail("cannot remove {}: {}", temp, ec.message());
    log_info("removed {}: a checkpoint write cut short (its process is gone)", temp);
  }
}

}  // namespace triad
