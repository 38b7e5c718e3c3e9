#pragma once
// Policies: rules over the metrics a run reports, each with an action (`--policy FILE.toml`).
//
//   [[rule]]
//   name = "exploding-gradients"          # unique; names the rule in decisions and errors
//   when = "grad_norm > 100 for 3 steps"  # a condition, grammar below
//   action = "halt"                       # alert | halt | review
//   message = "gradients exploded"        # optional; the default names the rule and the values it saw
//
// Conditions are parsed by a small recursive-descent parser into a tree that is only ever evaluated;
// nothing is executed. Grammar:
//
//   rule       := condition [ "for" INTEGER ( "step" | "steps" | "eval" | "evals" | "time" | "times" ) ]
//   condition  := conjunct { "or" conjunct }
//   conjunct   := negation { "and" negation }
//   negation   := "not" negation | comparison
//   comparison := sum [ ( "<" | "<=" | ">" | ">=" | "==" | "!=" ) sum ]
//   sum        := product { ( "+" | "-" ) product }
//   product    := unary { ( "*" | "/" ) unary }
//   unary      := "-" unary | primary
//   primary    := NUMBER | METRIC | FUNCTION "(" arguments ")" | "(" condition ")"
//   METRIC     := [A-Za-z_][A-Za-z0-9_]*, other than and, or, not, for
//   FUNCTION   := best(m) | min(m [, N]) | max(m [, N]) | mean(m [, N]) | prev(m) | abs(x)
//
// best/min/max/mean/prev read the metric's *earlier* values (the current record excluded), all of them or
// the last N; best is min (for losses). Types are checked when the file is read: the whole condition must
// be a comparison or a logical combination of them, and arithmetic is on numbers only.
//
// Evaluation, one metrics record (a JSON object; its numeric fields are the metrics) at a time:
// - A rule is evaluated on a record that holds at least one metric the rule reads; a metric the record
//   lacks takes its latest earlier value. A rule that reads a metric never seen, or a history that is
//   still empty, is unknown: it neither counts nor resets. and/or follow three-valued logic.
// - A rule fires when its condition has held for N consecutive evaluations (N = 1 without "for") and again
//   only after it has been false once: an alert is raised once per episode, not once per step.
//
// Metrics the run never reports: load and parse may be given the metrics the run reports (name -> a
// one-line description). A rule that reads any other metric is then refused when the file is read, naming
// the metric, the metrics there are and the nearest one ("did you mean grad_norm?"): misspelt, it would
// otherwise be unknown, and silent, for the whole run. Without the list any metric name is accepted.

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace triad {

enum class PolicyAction { kAlert, kHalt, kReview };
std::string_view policy_action_name(PolicyAction action);

struct Decision {
  std::string rule;
  PolicyAction action = PolicyAction::kAlert;
  std::string when;
  std::string message;
  std::optional<int64_t> step;  // the record's "step", when it has one
  nlohmann::json values;        // the metrics the rule read, as they were when it fired
};

struct PolicyExpr;  // the parsed condition, defined in policy_expr.h

// A condition, parsed. Throws an Error "column C: what was expected" for a malformed one.
struct PolicyCondition {
  std::shared_ptr<const PolicyExpr> expr;
  uint64_t for_count = 1;
  std::vector<std::string> metrics;  // every metric it reads, sorted
};
PolicyCondition parse_policy_condition(std::string_view when);

struct PolicyRule {
  std::string name;
  std::string when;
  PolicyAction action = PolicyAction::kAlert;
  std::string message;
  PolicyCondition condition;
};

class PolicySet {
 public:
  // Reads a policy TOML file; any error names file:line, the rule and (for a condition) its column.
  // With `known_metrics`, a rule that reads a metric not in it is an error too (see the top of this file).
  static PolicySet load(const std::string& path,
                        const std::map<std::string, std::string>* known_metrics = nullptr);
  // The same from text; `origin` stands for the file name in errors.
  static PolicySet parse(std::string_view toml_text, const std::string& origin,
                         const std::map<std::string, std::string>* known_metrics = nullptr);

  // Feeds one metrics record and returns the decisions of the rules that fire on it, in file order.
  std::vector<Decision> evaluate(const nlohmann::json& record);

  const std::vector<PolicyRule>& rules() const { return rules_; }
  // [{"name","when","action"}], for the audit log.
  nlohmann::json describe() const;

 private:
  struct MetricState {
    double latest = 0;
    std::vector<double> earlier;  // values before the current record
  };
  std::vector<PolicyRule> rules_;
  std::vector<uint64_t> held_;                  // per rule: consecutive evaluations it has held
  std::map<std::string, MetricState> metrics_;  // only the metrics some rule reads
  std::set<std::string> read_;
};

}  // namespace triad
