#pragma once
// One trial: a real `triad train` subprocess (the running binary, /proc/self/exe) into DIR/trials/NNNN,
// its stdout and stderr into DIR/trials/NNNN.log, and the metrics the search needs read back from its
// metrics.jsonl.

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace triad::search {

struct TrialOutcome {
  bool ok = false;
  std::map<std::string, double> metrics;  // each name asked for
  std::string error;                      // !ok: why (the log's last line, or the metric that is missing)
  std::string energy_source;              // the run's end record's: "rapl" or "estimate"
};

// Runs `binary train --out run_dir args...`, waiting for it. A run directory left by an interrupted
// attempt is removed first: a trial not in the journal never finished.
TrialOutcome run_trial(const std::string& binary, const std::vector<std::string>& args,
                       const std::string& run_dir, const std::vector<std::string>& metric_names);

// Each name's value in the last record of RUN/metrics.jsonl that has it as a number; nullopt and `error`
// set when one is missing. `energy_source` (if given) gets the end record's "rapl" or "estimate".
std::optional<std::map<std::string, double>> read_run_metrics(const std::string& run_dir,
                                                              const std::vector<std::string>& names,
                                                              std::string* error,
                                                              std::string* energy_source = nullptr);

}  // namespace triad::search
