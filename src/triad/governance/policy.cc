#include "triad/governance/policy.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <numeric>
#include <set>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad {

enum class ExprOp { kNumber, kMetric, kHistory, kAbs, kNeg, kArith, kCompare, kAnd, kOr, kNot };
enum class HistoryFn { kMin, kMax, kMean, kPrev };

struct PolicyExpr {
  ExprOp op = ExprOp::kNumber;
  double number = 0;
  std::string name;  // metric name, or the operator's spelling
  HistoryFn fn = HistoryFn::kMin;
  size_t window = 0;  // 0: the whole history
  std::unique_ptr<PolicyExpr> a, b;
};

namespace {

// ---- Tokens ----

enum class Tok { kNumber, kName, kOp, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;
  double number = 0;
  size_t column = 0;  // 1-based
};

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  auto is_name_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Token t;
    t.column = i + 1;
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), t.number);
      if (ec != std::errc()) fail("column {}: malformed number", t.column);
      size_t len = static_cast<size_t>(end - (s.data() + i));
      if (end < s.data() + s.size() && is_name_start(*end)) fail("column {}: malformed number", t.column);
      t.kind = Tok::kNumber;
      t.text = std::string(s.substr(i, len));
      i += len;
    } else if (is_name_start(c)) {
      size_t j = i;
      while (j < s.size() && is_name_char(s[j])) ++j;
      t.kind = Tok::kName;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else {
      static const char* kOps[] = {"<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "(", ")", ","};
      for (const char* op : kOps) {
        if (s.substr(i).starts_with(op)) {
          t.kind = Tok::kOp;
          t.text = op;
          break;
        }
      }
      if (t.kind != Tok::kOp) {
        if (c == '=') fail("column {}: '=' is not an operator (use '==' to compare)", t.column);
        if (c == '&' || c == '|' || c == '!') fail("column {}: use the words and, or, not", t.column);
        fail("column {}: unexpected character '{}'", t.column, c);
      }
      i += t.text.size();
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.column = s.size() + 1;
  out.push_back(end);
  return out;
}

// ---- Parser: one function per grammar rule; each returns a typed subtree. ----

enum class Type { kNumber, kBool };

struct Typed {
  std::unique_ptr<PolicyExpr> expr;
  Type type;
};

bool is_keyword(const std::string& s) {
  return s == "and" || s == "or" || s == "not" || s == "for";
}

std::string describe(const Token& t) {
  return t.kind == Tok::kEnd ? "the end" : "'" + t.text + "'";
}

constexpr size_t kMaxConditionChars = 4096;

class Parser {
 public:
  static constexpr int kMaxNesting = 64;
  explicit Parser(std::string_view text) : tokens_(tokenize(text)) {}

  PolicyCondition parse_rule() {
    Typed cond = condition();
    PolicyCondition out;
    if (peek_name("for")) {
      ++pos_;
      const Token& n = next();
      if (n.kind != Tok::kNumber || n.number < 1 || n.number != std::floor(n.number) || n.number > 1e9)
        fail("column {}: 'for' needs a whole number of steps (1 or more), found {}", n.column, describe(n));
      out.for_count = static_cast<uint64_t>(n.number);
      const Token& unit = next();
      static const std::set<std::string> kUnits = {"step", "steps", "eval", "evals", "time", "times"};
      if (unit.kind != Tok::kName || !kUnits.contains(unit.text))
        fail("column {}: expected 'steps' (or evals, times) after 'for {}', found {}", unit.column, n.text,
             describe(unit));
    }
    if (peek().kind != Tok::kEnd)
      fail("column {}: expected an operator, 'and', 'or', 'for' or the end, found {}", peek().column,
           describe(peek()));
    if (cond.type != Type::kBool) fail("column 1: the condition is a number; compare it, e.g. '... > 100'");
    out.expr = std::shared_ptr<const PolicyExpr>(std::move(cond.expr));
    out.metrics.assign(metrics_.begin(), metrics_.end());
    return out;
  }

 private:
  // One level deeper for the extent of a '(', '-', 'not' or function call (a deeper one fails, naming
  // the column), so that no condition can exhaust the stack.
  class Nest {
   public:
    Nest(Parser& parser, const Token& at) : parser_(parser) {
      if (++parser_.nesting_ > kMaxNesting)
        fail("column {}: nested more than {} deep ('(', '-', 'not', functions)", at.column, kMaxNesting);
    }
    ~Nest() { --parser_.nesting_; }

   private:
    Parser& parser_;
  };

  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool peek_op(const char* op) const { return peek().kind == Tok::kOp && peek().text == op; }
  bool peek_name(const char* name) const { return peek().kind == Tok::kName && peek().text == name; }

  void expect_op(const char* op, const char* after) {
    const Token& t = next();
    if (t.kind != Tok::kOp || t.text != op)
      fail("column {}: expected '{}' {}, found {}", t.column, op, after, describe(t));
  }

  static Typed make(ExprOp op, std::string name, Typed a, Typed b, Type type) {
    auto e = std::make_unique<PolicyExpr>();
    e->op = op;
    e->name = std::move(name);
    e->a = std::move(a.expr);
    e->b = std::move(b.expr);
    return {std::move(e), type};
  }

  static void require(const Typed& t, Type type, const Token& at, const char* what) {
    if (t.type != type)
      fail("column {}: {} needs {} on both sides", at.column, what,
           type == Type::kBool ? "conditions (comparisons)" : "numbers");
  }

  // One left-associative level: operand { op operand }, where both operands must be of `operand`.
  template <typename Operand>
  Typed chain(Operand next_level, std::initializer_list<const char*> ops, ExprOp op, Type operand,
              Type result) {
    Typed left = (this->*next_level)();
    auto at_op = [&] {
      return peek().kind != Tok::kEnd && peek().kind != Tok::kNumber &&
             std::any_of(ops.begin(), ops.end(), [&](const char* o) { return peek().text == o; });
    };
    while (at_op()) {
      const Token& t = next();
      Typed right = (this->*next_level)();
      std::string what = "'" + t.text + "'";
      require(left, operand, t, what.c_str());
      require(right, operand, t, what.c_str());
      left = make(op, t.text, std::move(left), std::move(right), result);
    }
    return left;
  }

  Typed condition() { return chain(&Parser::conjunct, {"or"}, ExprOp::kOr, Type::kBool, Type::kBool); }
  Typed conjunct() { return chain(&Parser::negation, {"and"}, ExprOp::kAnd, Type::kBool, Type::kBool); }

  Typed negation() {
    if (!peek_name("not")) return comparison();
    const Token& op = next();
    Nest nest(*this, op);
    Typed inner = negation();
    if (inner.type != Type::kBool) fail("column {}: 'not' needs a condition (a comparison)", op.column);
    return make(ExprOp::kNot, "not", std::move(inner), {}, Type::kBool);
  }

  Typed comparison() {
    Typed left = sum();
    static const std::set<std::string> kCompare = {"<", "<=", ">", ">=", "==", "!="};
    if (peek().kind != Tok::kOp || !kCompare.contains(peek().text)) return left;
    const Token& op = next();
    Typed right = sum();
    require(left, Type::kNumber, op, ("'" + op.text + "'").c_str());
    require(right, Type::kNumber, op, ("'" + op.text + "'").c_str());
    if (peek().kind == Tok::kOp && kCompare.contains(peek().text))
      fail("column {}: comparisons do not chain; join them with 'and'", peek().column);
    return make(ExprOp::kCompare, op.text, std::move(left), std::move(right), Type::kBool);
  }

  Typed sum() { return chain(&Parser::product, {"+", "-"}, ExprOp::kArith, Type::kNumber, Type::kNumber); }
  Typed product() { return chain(&Parser::unary, {"*", "/"}, ExprOp::kArith, Type::kNumber, Type::kNumber); }

  Typed unary() {
    if (!peek_op("-")) return primary();
    const Token& op = next();
    Nest nest(*this, op);
    Typed inner = unary();
    require(inner, Type::kNumber, op, "'-'");
    return make(ExprOp::kNeg, "-", std::move(inner), {}, Type::kNumber);
  }

  Typed primary() {
    const Token& t = next();
    if (t.kind == Tok::kNumber) {
      auto e = std::make_unique<PolicyExpr>();
      e->number = t.number;
      return {std::move(e), Type::kNumber};
    }
    if (t.kind == Tok::kOp && t.text == "(") {
      Nest nest(*this, t);
      Typed inner = condition();
      expect_op(")", "to close the '('");
      return inner;
    }
    if (t.kind != Tok::kName || is_keyword(t.text))
      fail("column {}: expected a number, a metric, a function or '(', found {}", t.column, describe(t));
    if (!peek_op("(")) {
      metrics_.insert(t.text);
      auto e = std::make_unique<PolicyExpr>();
      e->op = ExprOp::kMetric;
      e->name = t.text;
      return {std::move(e), Type::kNumber};
    }
    return function(t);
  }

  Typed function(const Token& name) {
    Nest nest(*this, name);
    ++pos_;  // '('
    auto e = std::make_unique<PolicyExpr>();
    if (name.text == "abs") {
      Typed inner = sum();
      require(inner, Type::kNumber, name, "abs()");
      expect_op(")", "after the argument of abs");
      e->op = ExprOp::kAbs;
      e->a = std::move(inner.expr);
      return {std::move(e), Type::kNumber};
    }
    static const std::map<std::string, HistoryFn> kHistory = {{"best", HistoryFn::kMin},
                                                              {"min", HistoryFn::kMin},
                                                              {"max", HistoryFn::kMax},
                                                              {"mean", HistoryFn::kMean},
                                                              {"prev", HistoryFn::kPrev}};
    auto fn = kHistory.find(name.text);
    if (fn == kHistory.end())
      fail("column {}: unknown function '{}' (known: abs, best, max, mean, min, prev)", name.column,
           name.text);
    const Token& metric = next();
    if (metric.kind != Tok::kName || is_keyword(metric.text))
      fail("column {}: {}() takes a metric name, found {}", metric.column, name.text, describe(metric));
    e->op = ExprOp::kHistory;
    e->fn = fn->second;
    e->name = metric.text;
    metrics_.insert(metric.text);
    bool windowed = name.text == "min" || name.text == "max" || name.text == "mean";
    if (windowed && peek_op(",")) {
      ++pos_;
      const Token& n = next();
      if (n.kind != Tok::kNumber || n.number < 1 || n.number != std::floor(n.number) || n.number > 1e9)
        fail("column {}: the window of {}() must be a whole number of values (1 or more)", n.column,
             name.text);
      e->window = static_cast<size_t>(n.number);
    }
    expect_op(")", windowed ? "after the metric (and optional window)" : "after the metric");
    return {std::move(e), Type::kNumber};
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
  std::set<std::string> metrics_;
};

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

PolicyCondition parse_policy_condition(std::string_view when) {
  if (when.find_first_not_of(" \t") == std::string_view::npos) fail("column 1: the condition is empty");
  // The parse, evaluation and freeing of a condition recurse over its tree: its length bounds the depth
  // of a chain (a + b + ...), Parser::kMaxNesting that of parentheses, '-', 'not' and function calls.
  if (when.size() > kMaxConditionChars)
    fail("column 1: the condition is {} characters long; at most {}", when.size(), kMaxConditionChars);
  return Parser(when).parse_rule();
}

PolicySet PolicySet::load(const std::string& path) {
  if (!path_exists(path)) fail_usage("policy file {}: no such file", path);
  return parse(read_file(path), path);
}

PolicySet PolicySet::parse(std::string_view toml_text, const std::string& origin) {
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
    try {
      rule.condition = parse_policy_condition(rule.when);
    } catch (const Error& e) {
      fail_usage("{}: rule '{}': when, {}", where(origin, t->get("when")->source()), rule.name, e.what());
    }
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
