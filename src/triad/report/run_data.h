#pragma once
// A run directory as the report reads it (docs/report.md): run.json, metrics.jsonl, remat_plan.jsonl,
// the audit log (verified in-process), the model card, REVIEW_REQUIRED, the checkpoints and an optional
// explanations.json. What cannot be read becomes a warning naming the file (and line) and the rest of
// the run still loads; only a path that is not a run at all is an error.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/governance/audit_verify.h"

namespace triad::report {

// One line of remat_plan.jsonl: the plan in force from `step` on (until the next line's step).
struct RematPlanLine {
  int step = 0;
  std::string planner, why;
  std::vector<std::vector<std::string>> dropped;  // per block, the recomputed units' names
  bool logits_recomputed = false;
};

struct AuditFacts {
  bool present = false;  // RUN/audit/log.jsonl exists
  VerifyReport verification;
  std::vector<nlohmann::json> entries;  // the entries that parse, in order
};

struct RunData {
  std::string dir;
  std::string name;                   // the run's label in the report (its directory name)
  nlohmann::json run;                 // run.json; an empty object when absent or unreadable
  std::vector<nlohmann::json> steps;  // step records (those with "loss"), ordered by step
  std::vector<nlohmann::json> evals;  // evaluation records, ordered by step
  std::vector<RematPlanLine> remat_plans;
  AuditFacts audit;
  std::string model_card;  // Markdown: RUN/model_card.md, else generated from the audit log; may be empty
  bool model_card_from_file = false;
  nlohmann::json review;  // REVIEW_REQUIRED's JSON (an object, or a string when unreadable); null if absent
  std::vector<std::string> checkpoints;           // step_N directory names
  std::vector<std::string> rejected_checkpoints;  // names under checkpoints/rejected/
  std::string explanations_path;                  // RUN/explanations.json when present
  nlohmann::json explanations;                    // its contents (null when unreadable)
  std::vector<std::string> warnings;              // what could not be read
};

// Loads a run directory. A path that is not a directory holding run.json or metrics.jsonl is a usage
// error; everything else that is wrong is a warning in RunData::warnings.
RunData load_run(const std::string& dir);

// Gives each run a distinct label: its directory name, or more of its path where two names collide.
void label_runs(std::vector<RunData>* runs);

// The (step, value) pairs of `field` in the records that carry it as a number (null, the JSON of a
// non-finite value, reads as NaN).
struct Curve {
  std::vector<double> step, value;
  bool empty() const { return step.empty(); }
};
Curve curve(const std::vector<nlohmann::json>& records, const std::string& field);

// A number of a record, or NaN when the record lacks it or it is not a number.
double number(const nlohmann::json& record, const std::string& field);

}  // namespace triad::report
