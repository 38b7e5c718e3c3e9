#include "triad/governance/policy.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <set>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/format.h"
#include "triad/governance/policy_expr.h"

namespace triad {

namespace {

// ---- Evaluation ----

using Value = std::optional<double>;  // nothing: unknown (a metric never seen, an empty history)

struct EvalContext {
  std::function<const double*(const std::string&)> latest;
  std::function<const std::vector<double>*(const std::string&)> earlier;
};

Value history_value(const PolicyExpr& e, const std::vector<double>* values) {
  if (!values || values->empty()) return std::nullopt;
  if (e.fn == HistoryFn::kPrev) return values->back();
  size_t n = e.window ? std::min(e.window, values->size()) : values->size();
  auto begin = values->end() - static_cast<std::ptrdiff_t>(n);
  switch (e.fn) {
    case HistoryFn::kMin:
      return *std::min_element(begin, values->end());
    case HistoryFn::kMax:
      return *std::max_element(begin, values->end());
    default:
      return std::accumulate(begin, values->end(), 0.0) / static_cast<double>(n);
  }
}

Value eval(const PolicyExpr& e, const EvalContext& ctx) {
  switch (e.op) {
    case ExprOp::kNumber:
      return e.number;
    case ExprOp::kMetric: {
      const double* v = ctx.latest(e.name);
      return v ? Value(*v) : std::nullopt;
    }
    case ExprOp::kHistory:
      return history_value(e, ctx.earlier(e.name));
    case ExprOp::kAbs: {
      Value v = eval(*e.a, ctx);
      return v ? Value(std::fabs(*v)) : std::nullopt;
    }
    case ExprOp::kNeg: {
      Value v = eval(*e.a, ctx);
      return v ? Value(-*v) : std::nullopt;
    }
    case ExprOp::kNot: {
      Value v = eval(*e.a, ctx);
      return v ? Value(*v == 0 ? 1.0 : 0.0) : std::nullopt;
    }
    case ExprOp::kAnd:
    case ExprOp::kOr: {
      // Three-valued: a known false decides 'and', a known true decides 'or'.
      Value a = eval(*e.a, ctx), b = eval(*e.b, ctx);
      double decisive = e.op == ExprOp::kAnd ? 0.0 : 1.0;
      if ((a && *a == decisive) || (b && *b == decisive)) return decisive;
      if (a && b) return 1.0 - decisive;
      return std::nullopt;
    }
    case ExprOp::kArith:
    case ExprOp::kCompare: {
      Value a = eval(*e.a, ctx), b = eval(*e.b, ctx);
      if (!a || !b) return std::nullopt;
      const std::string& op = e.name;
      if (op == "+") return *a + *b;
      if (op == "-") return *a - *b;
      if (op == "*") return *a * *b;
      if (op == "/") return *a / *b;  // x/0 is inf or nan; comparisons with nan are false
      bool r = op == "<"    ? *a < *b
               : op == "<=" ? *a <= *b
               : op == ">"  ? *a > *b
               : op == ">=" ? *a >= *b
               : op == "==" ? *a == *b
                            : *a != *b;
      return r ? 1.0 : 0.0;
    }
  }
  return std::nullopt;
}

PolicyAction parse_action(const std::string& s, bool& ok) {
  ok = true;
  if (s == "alert") return PolicyAction::kAlert;
  if (s == "halt") return PolicyAction::kHalt;
  if (s == "review") return PolicyAction::kReview;
  ok = false;
  return PolicyAction::kAlert;
}

std::string where(const std::string& origin, const toml::source_region& source) {
  return fmt::format("{}:{}", origin, source.begin.line);
}

std::string format_value(double v) {
  return fmt::format("{:g}", v);
}

// Refuses a rule that reads a metric the run never reports; `at` is the file:line of its condition.
void check_known_metrics(const PolicyRule& rule, const std::map<std::string, std::string>& known,
                         const std::string& at) {
  for (const std::string& metric : rule.condition.metrics) {
    if (known.contains(metric)) continue;
    std::vector<std::string> names;  // sorted: the map's order
    for (const auto& [name, description] : known) names.push_back(name);
    const std::string nearest = nearest_name(metric, names);
    fail_usage("{}: rule '{}': when reads '{}', a metric this run never reports{} (known metrics: {})", at,
               rule.name, metric, nearest.empty() ? "" : fmt::format("; did you mean {}?", nearest),
               names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", ")));
  }
}

}  // namespace

std::string_view policy_action_name(PolicyAction action) {
  switch (action) {
    case PolicyAction::kHalt:
      return "halt";
    case PolicyAction::kReview:
      return "review";
    default:
      return "alert";
  }
}

PolicySet PolicySet::load(const std::string& path, const std::map<std::string, std::string>* known_metrics) {
  if (!path_exists(path)) fail_usage("policy file {}: no such file", path);
  return parse(read_file(path), path, known_metrics);
}

PolicySet PolicySet::parse(std::string_view toml_text, const std::string& origin,
                           const std::map<std::string, std::string>* known_metrics) {
  toml::table table;
  try {
    table = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    fail_usage("{}:{}:{}: {}", origin, e.source().begin.line, e.source().begin.column, e.description());
  }
  PolicySet set;
  std::set<std::string> names;
  for (const auto& [key, node] : table) {
    if (key.str() != "rule")
      fail_usage("{}: unknown key '{}' (a policy file holds [[rule]] tables)", where(origin, key.source()),
                 key.str());
  }
  const toml::array* rules = table["rule"].as_array();
  if (!rules) {
    if (table.contains("rule")) fail_usage("{}: 'rule' must be [[rule]] tables", origin);
    fail_usage("{}: no rules (add [[rule]] tables with name, when and action)", origin);
  }
  for (const toml::node& node : *rules) {
    const toml::table* t = node.as_table();
    if (!t) fail_usage("{}: 'rule' must be [[rule]] tables", where(origin, node.source()));
    std::string at = where(origin, t->source());
    for (const auto& [key, value] : *t) {
      std::string k(key.str());
      if (k != "name" && k != "when" && k != "action" && k != "message")
        fail_usage("{}: unknown key '{}' in a rule (known: name, when, action, message)",
                   where(origin, key.source()), k);
      if (!value.is_string()) fail_usage("{}: '{}' must be a string", where(origin, key.source()), k);
    }
    PolicyRule rule;
    auto field = [&](const char* k) -> std::optional<std::string> { return (*t)[k].value<std::string>(); };
    std::optional<std::string> name = field("name"), when = field("when"), action = field("action");
    if (!name || name->empty()) fail_usage("{}: a rule needs a name", at);
    rule.name = *name;
    if (!names.insert(rule.name).second) fail_usage("{}: rule '{}' is defined twice", at, rule.name);
    if (!when) fail_usage("{}: rule '{}' needs when = \"condition\"", at, rule.name);
    if (!action) fail_usage("{}: rule '{}' needs action = \"alert\", \"halt\" or \"review\"", at, rule.name);
    bool ok;
    rule.action = parse_action(*action, ok);
    if (!ok)
      fail_usage("{}: rule '{}': action '{}' is not alert, halt or review",
                 where(origin, t->get("action")->source()), rule.name, *action);
    rule.when = *when;
    rule.message = field("message").value_or("");
    std::string when_at = where(origin, t->get("when")->source());
    try {
      rule.condition = parse_policy_condition(rule.when);
    } catch (const Error& e) {
      fail_usage("{}: rule '{}': when, {}", when_at, rule.name, e.what());
    }
    if (known_metrics) check_known_metrics(rule, *known_metrics, when_at);
    set.read_.insert(rule.condition.metrics.begin(), rule.condition.metrics.end());
    set.rules_.push_back(std::move(rule));
  }
  set.held_.assign(set.rules_.size(), 0);
  return set;
}

std::vector<Decision> PolicySet::evaluate(const nlohmann::json& record) {
  std::map<std::string, double> current;
  if (record.is_object()) {
    for (const auto& [key, value] : record.items()) {
      if (value.is_number()) current[key] = value.get<double>();
    }
  }
  EvalContext ctx;
  ctx.latest = [&](const std::string& name) -> const double* {
    if (auto it = current.find(name); it != current.end()) return &it->second;
    auto it = metrics_.find(name);
    return it == metrics_.end() ? nullptr : &it->second.latest;
  };
  ctx.earlier = [&](const std::string& name) -> const std::vector<double>* {
    auto it = metrics_.find(name);
    return it == metrics_.end() ? nullptr : &it->second.earlier;
  };

  std::vector<Decision> decisions;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const PolicyRule& rule = rules_[i];
    const auto& reads = rule.condition.metrics;
    if (std::none_of(reads.begin(), reads.end(), [&](const std::string& m) { return current.contains(m); }))
      continue;
    Value v = eval(*rule.condition.expr, ctx);
    if (!v) continue;
    if (*v == 0) {
      held_[i] = 0;
      continue;
    }
    if (++held_[i] != rule.condition.for_count) continue;
    Decision d;
    d.rule = rule.name;
    d.action = rule.action;
    d.when = rule.when;
    if (record.contains("step") && record["step"].is_number_integer()) d.step = record["step"].get<int64_t>();
    d.values = nlohmann::json::object();
    std::vector<std::string> shown;
    for (const std::string& m : reads) {
      if (const double* x = ctx.latest(m)) {
        d.values[m] = *x;
        shown.push_back(m + "=" + format_value(*x));
      }
    }
    d.message = rule.message.empty()
                    ? fmt::format("policy rule '{}' ({}) fired{}: {}", rule.name, rule.when,
                                  d.step ? fmt::format(" at step {}", *d.step) : "", fmt::join(shown, ", "))
                    : fmt::format("policy rule '{}': {}", rule.name, rule.message);
    decisions.push_back(std::move(d));
  }
  // The record becomes history only after every rule has seen it.
  for (const auto& [name, value] : current) {
    if (!read_.contains(name)) continue;
    MetricState& s = metrics_[name];
    s.earlier.push_back(value);
    s.latest = value;
  }
  return decisions;
}

nlohmann::json PolicySet::describe() const {
  nlohmann::json out = nlohmann::json::array();
  for (const PolicyRule& r : rules_)
    out.push_back({{"name", r.name}, {"when", r.when}, {"action", policy_action_name(r.action)}});
  return out;
}

}  // namespace triad
