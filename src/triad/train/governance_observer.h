#pragma once
// Governance of a training run: the trainer's events become entries of the run's audit log
// (governance/audit_log.h), tree heads are written (and signed with --audit-key) after each checkpoint and
// at the end, and --policy rules are evaluated on every step and eval record.
//
// Every run gets an audit log: accountability is the default, not an option. What is logged:
//   run_start        the training options (and their hash), triad version, command line, data manifest;
//                    again on every resume, with "resumed_from_step"
//   policy           the rules and the policy file, when --policy is given
//   eval             each evaluation's metrics
//   checkpoint       every file of each checkpoint with its SHA-256, then a head
//   privacy          under DP-SGD, the ledger's ε at each eval, checkpoint and the end (once per step)
//   files_removed    logged checkpoint files that are gone (pruned by --keep-ckpts, or missing at resume),
//                    so that verify knows their absence was recorded, not hidden
//   policy_decision  every rule that fires
//   run_end          completed | halted | preempted | failed, with "review": true when a review rule fired
//   (after a
//                    last privacy entry under DP-SGD, and with its dp_epsilon); then a head
//
// Decisions: alert prints a warning on stderr; halt asks the trainer to stop (it saves a checkpoint and
// exits with code 3, naming the rule); review writes RUN/REVIEW_REQUIRED (see below) and marks the run_end.
//
// The observer is for the one process that writes the log (rank 0 of a multi-process run); nothing in it
// knows about ranks.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "triad/governance/audit_log.h"
#include "triad/governance/note.h"
#include "triad/governance/policy.h"
#include "triad/train/trainer.h"

namespace triad {

struct GovernanceFlags {
  std::string audit_key;  // --audit-key: a NAME.key from `triad audit keygen`; empty: unsigned heads
  std::string policy;     // --policy FILE.toml; empty: no rules
};

// RUN/REVIEW_REQUIRED: written (atomically) when a review rule fires, as JSON
//   {"review_required": true, "reasons": [{"rule", "step", "message"}, ...]}
// Reasons accumulate over the run and its resumes; whoever completes the review deletes the file.
std::string review_marker_path(const std::string& run_dir);

// The command line as the kernel has it (/proc/self/cmdline), so the log says exactly how a run was invoked.
std::vector<std::string> process_command_line();

class AuditObserver : public TrainObserver {
 public:
  // Loads the key and the policy file, so that a bad flag fails before any training work (usage errors
  // naming the flag). The log itself is opened in on_start, when the run directory is known.
  explicit AuditObserver(const GovernanceFlags& flags);
  // A run that dies with an exception gets a run_end "failed" entry and a final head.
  ~AuditObserver() override;

  void on_start(Trainer& trainer, const nlohmann::json& run) override;
  void on_step(Trainer& trainer, const StepRecord& record) override;
  void on_eval(Trainer& trainer, const EvalRecord& record) override;
  void on_checkpoint(Trainer& trainer, const CheckpointInfo& info) override;
  void on_end(Trainer& trainer, const nlohmann::json& summary) override;

 private:
  void apply(Trainer& trainer, const nlohmann::json& record);
  void mark_review(const Decision& decision);
  void log_privacy_if_dp(Trainer& trainer, int step);
  void note_removed_files(const std::string& reason, int step);
  void seal();

  GovernanceFlags flags_;
  std::optional<NoteSigner> signer_;
  std::optional<PolicySet> policies_;
  std::optional<AuditLog> log_;
  std::string run_dir_;
  // Checkpoint files logged and not yet recorded as removed, by stored path.
  std::map<std::string, LoggedFile> live_files_;
  int last_step_ = 0;
  uint64_t privacy_logged_steps_ = UINT64_MAX;  // the ledger's step count at its last privacy entry
  bool review_ = false;
  bool started_ = false;  // run_start is logged: from here on the run must end with a run_end entry
  bool ended_ = false;
};

}  // namespace triad
