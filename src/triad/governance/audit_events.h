#pragma once
// What the trainer (and `triad generate`) write to the audit log: one function per kind, so that the
// payloads `triad audit card` and `verify` read have one definition. Each returns the entry's seq.
//
//   kind             payload
//   run_start        config, config_sha256 (of its canonical JSON), triad_version, command,
//                    files: [data manifest] (+ resumed_from_step on a resume)
//   policy           rules: [{name, when, action}], files: [the policy file]
//   checkpoint       step, files: [{path, sha256, bytes}] (every file of the checkpoint)
//   files_removed    step, reason, removed: [{path, sha256, bytes}] (logged files that are gone)
//   eval             step, metrics: {name: value}
//   policy_decision  rule, action, when, message, step, values
//   privacy          step, epsilon, delta, order, conversion, steps, sample_rate, noise_multiplier
//   run_end          status (completed | halted | preempted | failed), plus a summary
//   restart          `triad launch` relaunching the run (train/supervisor.h): attempt, reason (failed |
//                    preempted), exit_code, exit, counted, failures, max_restarts, ranks, previous_ranks,
//                    backoff_s, command; resume_from_step, or started_over: true with no valid checkpoint
//   inference        prompt_sha256, output_sha256, prompt_bytes, output_bytes [, prompt, output]
//
// A typical run: open the log, log_run_start, log_policies, then per eval log_eval (+ log_privacy), each
// decision log_decision, per checkpoint log_checkpoint + write_head(key), at the end log_run_end +
// write_head(key).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "triad/governance/audit_log.h"
#include "triad/governance/policy.h"
#include "triad/governance/rdp.h"

namespace triad {

// `data_manifest` (the manifest.json of `triad prepare`) may be empty when there is none. `extra` is merged
// into the payload (a resumed run adds "resumed_from_step").
uint64_t log_run_start(AuditLog& log, const nlohmann::json& config, const std::string& data_manifest,
                       const std::vector<std::string>& command = {},
                       const nlohmann::json& extra = nlohmann::json::object());
uint64_t log_policies(AuditLog& log, const std::string& policy_path, const PolicySet& policies);
uint64_t log_checkpoint(AuditLog& log, int64_t step, const std::vector<std::string>& files);
// Logged files that no longer exist: `removed` is [{path, sha256, bytes}] as they were logged. verify does
// not re-hash a "files" record that a later files_removed entry lists.
uint64_t log_files_removed(AuditLog& log, int64_t step, std::string_view reason,
                           const nlohmann::json& removed);
// `groups`: a classifier's per-identity-group values (the model card's per-group table), or null.
uint64_t log_eval(AuditLog& log, int64_t step, const nlohmann::json& metrics,
                  const nlohmann::json& groups = nullptr);
uint64_t log_decision(AuditLog& log, const Decision& decision);
uint64_t log_privacy(AuditLog& log, int64_t step, const RdpAccountant& accountant, double delta,
                     DpConversion conversion = DpConversion::kImproved);
uint64_t log_run_end(AuditLog& log, std::string_view status,
                     const nlohmann::json& summary = nlohmann::json::object());
// `payload` as supervisor.h describes it; "attempt", "reason" and "exit_code" are required.
uint64_t log_restart(AuditLog& log, const nlohmann::json& payload);
// Hashes of prompt and output; the texts themselves only when `include_text` (--log-text).
uint64_t log_inference(AuditLog& log, std::string_view prompt, std::string_view output, bool include_text,
                       const nlohmann::json& extra = nlohmann::json::object());

}  // namespace triad
