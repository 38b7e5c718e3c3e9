#pragma once
// A Markdown model card (Mitchell et al. 2019, "Model Cards for Model Reporting") filled from a run's audit
// log: its nine sections, with what the log records (configuration and its hash, data lineage from the
// prepare manifest, evaluations, privacy ε, policies and their decisions, checkpoint hashes) and the
// verification status. What the log cannot know (intended use, factors, ethics) is marked for a person to
// write rather than invented.

#include <map>
#include <string>

#include "triad/governance/audit_verify.h"

namespace triad {

// `metric_meanings` (metric -> what it means, as the trainer declares its records) explains each logged
// metric under Metrics.
std::string model_card_markdown(const std::string& run_dir, const VerifyReport& verification,
                                const std::map<std::string, std::string>& metric_meanings = {});

}  // namespace triad
