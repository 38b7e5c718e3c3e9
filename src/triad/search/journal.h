#pragma once
// The search's append-only journal, DIR/journal.jsonl: what makes a killed search resumable. One JSON
// object per line, each written and fsynced before the search goes on:
//
//   {"kind": "search", "space_sha256", "algorithm", "seed", "population"}     the first line
//   {"kind": "trial", "trial": 3, "x": [...], "args": [...], "command": "triad train ...",
//    "status": "ok" | "failed", "feasible": true, "metrics": {"val_loss": 5.1, ...}, "energy_source",
//    "fitness": [...], "error": "...", "hypervolume": 1.23}                    one per finished trial
//   {"kind": "generation", "generation": 2, "trials": 24, "hypervolume": 1.5}  NSGA-II, after each
//
// A trial is its command line: the search looks a decision vector's train flags up here first, and runs
// only those it does not find, so a finished trial is never run again. A torn last line (the search was
// killed while writing it) is dropped when the journal is opened.

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace triad::search {

struct TrialRecord {
  int trial = 0;  // its directory, DIR/trials/NNNN
  std::vector<double> x;
  std::vector<std::string> args;          // the train flags, --out left out
  std::string command;                    // the command line that reproduces it
  std::string status;                     // "ok" or "failed"
  bool feasible = false;                  // ok and within every constraint
  std::map<std::string, double> metrics;  // each objective and constrained metric
  std::vector<double> fitness;            // what the algorithm saw: the objectives, or a penalty
  std::string error;                      // failed: the last line the trial printed on stderr
  std::string energy_source;              // "rapl" or "estimate" when energy is among the metrics
  double hypervolume = 0;                 // of the feasible trials so far, this one included

  nlohmann::json to_json() const;
  static TrialRecord from_json(const nlohmann::json& j);
};

// The key of a trial: its train flags joined.
std::string trial_key(const std::vector<std::string>& args);

class Journal {
 public:
  // Opens DIR/journal.jsonl, creating it with `header` or checking that its header says the same
  // (another space, algorithm or seed is a usage error: the trials would not be this search's).
  Journal(const std::string& path, const nlohmann::json& header);

  const std::vector<TrialRecord>& trials() const { return trials_; }
  const TrialRecord* find(const std::vector<std::string>& args) const;
  void append(const TrialRecord& trial);
  // Once per generation: a resumed search replaying generations it logged before adds nothing.
  void append_generation(int generation, double hypervolume);

 private:
  void append_line(const nlohmann::json& j);

  int last_generation_ = 0;
  std::string path_;
  std::vector<TrialRecord> trials_;
  std::map<std::string, size_t> by_key_;
};

}  // namespace triad::search
