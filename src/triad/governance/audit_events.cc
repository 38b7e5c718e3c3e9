#include "triad/governance/audit_events.h"

#include "triad/core/error.h"
#include "triad/core/sha256.h"
#include "triad/core/version.h"

namespace triad {

uint64_t log_run_start(AuditLog& log, const nlohmann::json& config, const std::string& data_manifest,
                       const std::vector<std::string>& command, const nlohmann::json& extra) {
  nlohmann::json payload = extra.is_object() ? extra : nlohmann::json::object();
  payload["config"] = config;
  payload["config_sha256"] = sha256_hex(canonical_json(config, "run config"));
  payload["triad_version"] = kVersion;
  payload["command"] = command;
  std::vector<std::string> files;
  if (!data_manifest.empty()) files.push_back(data_manifest);
  return log.append_files("run_start", files, std::move(payload));
}

uint64_t log_policies(AuditLog& log, const std::string& policy_path, const PolicySet& policies) {
  return log.append_files("policy", {policy_path}, {{"rules", policies.describe()}});
}

uint64_t log_checkpoint(AuditLog& log, int64_t step, const std::vector<std::string>& files) {
  return log.append_files("checkpoint", files, {{"step", step}});
}

uint64_t log_files_removed(AuditLog& log, int64_t step, std::string_view reason,
                           const nlohmann::json& removed) {
  if (!removed.is_array()) fail("files_removed: 'removed' must be an array");
  return log.append("files_removed", {{"step", step}, {"reason", reason}, {"removed", removed}});
}

uint64_t log_eval(AuditLog& log, int64_t step, const nlohmann::json& metrics, const nlohmann::json& groups) {
  if (!metrics.is_object()) fail("eval metrics must be a JSON object");
  nlohmann::json payload = {{"step", step}, {"metrics", metrics}};
  if (!groups.is_null()) payload["groups"] = groups;
  return log.append("eval", std::move(payload));
}

uint64_t log_decision(AuditLog& log, const Decision& d) {
  nlohmann::json payload = {{"rule", d.rule},
                            {"action", policy_action_name(d.action)},
                            {"when", d.when},
                            {"message", d.message},
                            {"values", d.values}};
  if (d.step) payload["step"] = *d.step;
  return log.append("policy_decision", std::move(payload));
}

uint64_t log_privacy(AuditLog& log, int64_t step, const RdpAccountant& accountant, double delta,
                     DpConversion conversion) {
  PrivacySpent spent = accountant.spent(delta, conversion);
  nlohmann::json payload = {{"step", step},
                            {"epsilon", spent.epsilon},
                            {"delta", delta},
                            {"order", spent.order},
                            {"conversion", dp_conversion_name(conversion)},
                            {"accountant", "rdp"},
                            {"steps", accountant.steps()}};
  const nlohmann::json history = accountant.to_json()["history"];
  if (!history.empty()) {
    payload["sample_rate"] = history.back()[0];
    payload["noise_multiplier"] = history.back()[1];
  }
  return log.append("privacy", std::move(payload));
}

uint64_t log_run_end(AuditLog& log, std::string_view status, const nlohmann::json& summary) {
  if (status != "completed" && status != "halted" && status != "preempted" && status != "failed")
    fail("run_end status '{}' is not completed, halted, preempted or failed", status);
  nlohmann::json payload = summary.is_object() ? summary : nlohmann::json::object();
  payload["status"] = status;
  return log.append("run_end", std::move(payload));
}

uint64_t log_restart(AuditLog& log, const nlohmann::json& payload) {
  for (const char* key : {"attempt", "reason", "exit_code"}) {
    if (!payload.is_object() || !payload.contains(key)) fail("restart entry: '{}' is missing", key);
  }
  return log.append("restart", payload);
}

uint64_t log_inference(AuditLog& log, std::string_view prompt, std::string_view output, bool include_text,
                       const nlohmann::json& extra) {
  nlohmann::json payload = extra.is_object() ? extra : nlohmann::json::object();
  payload["prompt_sha256"] = sha256_hex(prompt);
  payload["output_sha256"] = sha256_hex(output);
  payload["prompt_bytes"] = prompt.size();
  payload["output_bytes"] = output.size();
  if (include_text) {
    payload["prompt"] = prompt;
    payload["output"] = output;
  }
  return log.append("inference", std::move(payload));
}

}  // namespace triad
