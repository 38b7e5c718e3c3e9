// The condition language of policy.h: a tokenizer, then a recursive-descent parser that builds the
// PolicyExpr tree (policy_expr.h) and checks its types as it goes. Errors are "column C: what was expected".

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "triad/core/error.h"
#include "triad/governance/policy.h"
#include "triad/governance/policy_expr.h"

namespace triad {

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

}  // namespace

PolicyCondition parse_policy_condition(std::string_view when) {
  if (when.find_first_not_of(" \t") == std::string_view::npos) fail("column 1: the condition is empty");
  // The parse, evaluation and freeing of a condition recurse over its tree: its length bounds the depth
  // of a chain (a + b + ...), Parser::kMaxNesting that of parentheses, '-', 'not' and function calls.
  if (when.size() > kMaxConditionChars)
    fail("column 1: the condition is {} characters long; at most {}", when.size(), kMaxConditionChars);
  return Parser(when).parse_rule();
}

}  // namespace triad
