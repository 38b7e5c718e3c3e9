#include "triad/train/governance_observer.h"

#include <exception>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/sha256.h"
#include "triad/governance/audit_events.h"
#include "triad/train/records.h"

namespace triad {

namespace fs = std::filesystem;

std::vector<std::string> process_command_line() {
  std::vector<std::string> args;
  std::string raw;
  try {
    raw = read_file("/proc/self/cmdline");
  } catch (const Error&) {
    return args;  // not Linux: the config and its hash are still logged
  }
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    args.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

std::string review_marker_path(const std::string& run_dir) {
  return (fs::path(run_dir) / "REVIEW_REQUIRED").string();
}

AuditObserver::AuditObserver(const GovernanceFlags& flags) : flags_(flags) {
  if (!flags.audit_key.empty()) {
    if (!fs::is_regular_file(flags.audit_key))
      fail_usage("--audit-key {}: no such file (create a key pair with 'triad audit keygen --out NAME')",
                 flags.audit_key);
    try {
      signer_ = load_signer(flags.audit_key);
    } catch (const Error& e) {
      fail_usage("--audit-key: {}", e.what());
    }
  }
  // A rule may read only what the trainer's records carry: a misspelt metric fails here, not silently.
  if (!flags.policy.empty()) policies_ = PolicySet::load(flags.policy, &metric_fields());
}

AuditObserver::~AuditObserver() {
  if (!started_ || ended_) return;
  // Only an exception leaves run() without on_end: record that the run failed, and seal what it logged.
  try {
    log_run_end(*log_, "failed", {{"step", last_step_}, {"review", review_}});
    seal();
  } catch (const std::exception& e) {
    log_warn("{}: could not record the failed run: {}", audit_log_path(run_dir_), e.what());
  }
}

void AuditObserver::on_start(Trainer& trainer, const nlohmann::json& run) {
  run_dir_ = trainer.run_dir();
  const bool existing = path_exists(audit_log_path(run_dir_));
  // A resumed run continues its log; a crash may have torn the last line, which is cut off and logged.
  log_.emplace(AuditLog::open(run_dir_, {.host = "", .rank = 0, .recover_torn_tail = existing}));
  const std::set<std::string>& keys = log_->signing_keys();
  if (!keys.empty() && !signer_) {
    fail_usage("{}: the run's tree heads are signed (by {}); resume it with --audit-key", run_dir_,
               *keys.begin());
  }
  if (signer_ && !keys.empty() && !keys.contains(signer_->verifier().to_string())) {
    log_warn("{}: the heads so far are signed by {}; from now on they are signed by {}", run_dir_,
             *keys.begin(), signer_->verifier().to_string());
  }
  const int start_step = run.value("start_step", 0);
  last_step_ = start_step;
  review_ = path_exists(review_marker_path(run_dir_));

  if (existing) {
    // The checkpoint files the log still vouches for; those gone since (a crash between pruning and
    // logging, set aside by resume, or removed by hand) are recorded as removed before the run continues.
    live_files_ = live_checkpoint_files(run_dir_);
    note_removed_files(fmt::format("missing when the run was resumed at step {}", start_step), start_step);
  }

  nlohmann::json extra = nlohmann::json::object();
  if (start_step > 0) extra["resumed_from_step"] = start_step;
  const std::string manifest = (fs::path(trainer.options().data_dir) / "manifest.json").string();
  log_run_start(*log_, run.at("options"), path_exists(manifest) ? manifest : "", process_command_line(),
                extra);
  started_ = true;
  if (!policies_) return;
  log_policies(*log_, flags_.policy, *policies_);
  // Rebuild the rules' history (best(), windows, "for N steps") from the records up to the checkpoint, so
  // a resumed run is judged as if it had not stopped. Their decisions were taken (and logged) back then.
  const std::string metrics = (fs::path(run_dir_) / "metrics.jsonl").string();
  if (start_step == 0 || !path_exists(metrics)) return;
  std::string text = read_file(metrics);
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) break;
    auto record = nlohmann::json::parse(text.substr(begin, end - begin), nullptr, false);
    begin = end + 1;
    if (record.is_object() && record.value("step", 0) <= start_step) policies_->evaluate(record);
  }
}

void AuditObserver::on_step(Trainer& trainer, const StepRecord& record) {
  last_step_ = record.step;
  apply(trainer, record.to_json());
}

void AuditObserver::on_eval(Trainer& trainer, const EvalRecord& record) {
  const nlohmann::json all = record.to_json();
  nlohmann::json metrics = all;
  metrics.erase("step");
  log_eval(*log_, record.step, metrics);
  log_privacy_if_dp(trainer, record.step);
  apply(trainer, all);
}

void AuditObserver::on_checkpoint(Trainer& trainer, const CheckpointInfo& info) {
  last_step_ = info.step;
  std::vector<std::string> files;
  std::map<std::string, LoggedFile> logged;
  for (const auto& [name, digest] : info.sha256) {
    std::string path = (fs::path(info.dir) / name).string();
    files.push_back(path);
    logged[logged_path(run_dir_, path)] = {digest, file_size(path)};
  }
  std::string manifest = (fs::path(info.dir) / "manifest.json").string();
  files.push_back(manifest);
  logged[logged_path(run_dir_, manifest)] = {sha256_file_hex(manifest), file_size(manifest)};
  // A path logged before with other contents (a checkpoint of the same step written again after its
  // predecessor was deleted) is superseded: its old record is closed like a removed file's.
  for (const auto& [path, digest] : logged) {
    auto it = live_files_.find(path);
    if (it != live_files_.end() && it->second.sha256 != digest.sha256) {
      log_files_removed(*log_, info.step, "replaced by a new checkpoint of the same step",
                        nlohmann::json::array(
                            {{{"path", path}, {"sha256", it->second.sha256}, {"bytes", it->second.bytes}}}));
      live_files_.erase(it);
    }
  }
  note_removed_files("pruned (--keep-ckpts) or removed before this checkpoint", info.step);
  log_checkpoint(*log_, info.step, files);
  live_files_.insert(logged.begin(), logged.end());
  log_privacy_if_dp(trainer, info.step);
  seal();
}

void AuditObserver::on_end(Trainer& trainer, const nlohmann::json& summary) {
  nlohmann::json payload = summary;
  std::string status = payload.value("status", "completed");
  payload.erase("status");
  if (payload.contains("checkpoint") && payload["checkpoint"].is_string() &&
      !payload["checkpoint"].get<std::string>().empty())
    payload["checkpoint"] = logged_path(run_dir_, payload["checkpoint"].get<std::string>());
  payload["review"] = review_;
  log_privacy_if_dp(trainer, last_step_);
  if (const RdpAccountant* ledger = trainer.privacy_ledger())
    payload["dp_epsilon"] = ledger->spent(trainer.options().dp_delta).epsilon;
  log_run_end(*log_, status, payload);
  seal();
  ended_ = true;
}

void AuditObserver::apply(Trainer& trainer, const nlohmann::json& record) {
  if (!policies_) return;
  for (const Decision& d : policies_->evaluate(record)) {
    log_decision(*log_, d);
    switch (d.action) {
      case PolicyAction::kAlert:
        log_warn("alert: {}", d.message);
        break;
      case PolicyAction::kHalt:
        trainer.request_halt(d.message);  // the trainer prints it when it stops
        break;
      case PolicyAction::kReview:
        mark_review(d);
        log_warn("review required: {} (recorded in {})", d.message, review_marker_path(run_dir_));
        break;
    }
  }
}

void AuditObserver::mark_review(const Decision& d) {
  const std::string path = review_marker_path(run_dir_);
  nlohmann::json marker = {{"review_required", true}, {"reasons", nlohmann::json::array()}};
  if (path_exists(path)) {
    auto old = nlohmann::json::parse(read_file(path), nullptr, false);
    if (old.is_object() && old.value("reasons", nlohmann::json()).is_array())
      marker["reasons"] = old["reasons"];
  }
  nlohmann::json reason = {{"rule", d.rule}, {"message", d.message}};
  if (d.step) reason["step"] = *d.step;
  marker["reasons"].push_back(reason);
  write_file_atomic(path, marker.dump(2) + "\n");
  review_ = true;
}

void AuditObserver::log_privacy_if_dp(Trainer& trainer, int step) {
  const RdpAccountant* ledger = trainer.privacy_ledger();
  // Once per state of the ledger: an eval, a checkpoint and the end at the same step make one entry.
  if (!ledger || ledger->steps() == privacy_logged_steps_) return;
  log_privacy(*log_, step, *ledger, trainer.options().dp_delta);
  privacy_logged_steps_ = ledger->steps();
}

void AuditObserver::note_removed_files(const std::string& reason, int step) {
  nlohmann::json removed = nlohmann::json::array();
  for (auto it = live_files_.begin(); it != live_files_.end();) {
    if (fs::exists(resolve_logged_path(run_dir_, it->first))) {
      ++it;
      continue;
    }
    removed.push_back({{"path", it->first}, {"sha256", it->second.sha256}, {"bytes", it->second.bytes}});
    it = live_files_.erase(it);
  }
  if (!removed.empty()) log_files_removed(*log_, step, reason, removed);
}

void AuditObserver::seal() {
  log_->write_head(signer_ ? &*signer_ : nullptr);
}

}  // namespace triad
