#include "triad/search/space.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cmath>
#include <set>
#include <variant>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/train/options.h"
#include "triad/train/records.h"

namespace triad::search {

namespace {

std::string where(const std::string& origin, const toml::source_region& source) {
  return fmt::format("{}:{}", origin, source.begin.line);
}

// The metric names every objective or constraint may use besides metrics.jsonl's step and eval fields.
const std::set<std::string>& known_objectives() {
  static const std::set<std::string> names = {"val_loss", "val_ppl", "loss",  "wall_s",       "peak_rss_mib",
                                              "energy_j", "co2_g",   "cpu_s", "tokens_per_s", "step_ms"};
  return names;
}

// The `triad train` option a space names: a usage error naming the line otherwise.
OptionField train_field(TrainOptions& scratch, const std::string& flag, const std::string& at) {
  if (flag == "out" || flag == "resume" || flag == "force" || flag == "config")
    fail_usage("{}: --{} is set by the search, not the space", at, flag);
  const Option<TrainOptions>* o = TrainOptions::options().find(flag);
  if (!o || !o->is_flag)
    fail_usage("{}: '{}' is not a 'triad train' flag (see 'triad train --help')", at, flag);
  return o->field(scratch);
}

bool is_integer_field(const OptionField& f) {
  return std::holds_alternative<int*>(f) || std::holds_alternative<int64_t*>(f) ||
         std::holds_alternative<uint64_t*>(f);
}

// A TOML scalar as the flag's text; the type must suit the flag.
std::string scalar_text(const toml::node& node, const OptionField& field, const std::string& at,
                        const std::string& flag) {
  if (std::holds_alternative<bool*>(field)) {
    if (auto b = node.value<bool>()) return *b ? "true" : "false";
    fail_usage("{}: '{}' is an on/off flag: give true or false", at, flag);
  }
  if (is_integer_field(field)) {
    if (node.is_integer()) return std::to_string(*node.value<int64_t>());
    fail_usage("{}: '{}' takes an integer", at, flag);
  }
  if (std::holds_alternative<double*>(field)) {
    if (node.is_number()) return fmt::format("{:g}", *node.value<double>());
    fail_usage("{}: '{}' takes a number", at, flag);
  }
  if (auto s = node.value<std::string>()) return *s;
  if (node.is_number()) return fmt::format("{:g}", *node.value<double>());
  fail_usage("{}: '{}' takes a string", at, flag);
}

Dimension parse_dimension(const toml::node& node, const OptionField& field, const std::string& at,
                          const std::string& flag) {
  const toml::table* t = node.as_table();
  if (!t) fail_usage("{}: '{}' must be {{min = .., max = ..}} or {{choices = [..]}}", at, flag);
  Dimension d;
  d.flag = flag;
  for (const auto& [key, value] : *t) {
    const std::string k(key.str());
    if (k != "min" && k != "max" && k != "log" && k != "choices")
      fail_usage("{}: '{}': unknown key '{}' (known: min, max, log, choices)", at, flag, k);
  }
  if (const toml::array* choices = (*t)["choices"].as_array()) {
    if (t->contains("min") || t->contains("max"))
      fail_usage("{}: '{}': choices or min/max, not both", at, flag);
    if (choices->empty()) fail_usage("{}: '{}': choices is empty", at, flag);
    for (const toml::node& c : *choices) d.choices.push_back(scalar_text(c, field, at, flag));
    d.kind = Dimension::Kind::kChoice;
    d.min = 0;
    d.max = static_cast<double>(d.choices.size() - 1);
    return d;
  }
  const toml::node* lo = t->get("min");
  const toml::node* hi = t->get("max");
  if (!lo || !hi || !lo->is_number() || !hi->is_number())
    fail_usage("{}: '{}' needs numeric min and max (or choices)", at, flag);
  const bool integers = lo->is_integer() && hi->is_integer();
  if (is_integer_field(field) && !integers)
    fail_usage("{}: '{}' takes an integer: give integer min and max", at, flag);
  if (!is_integer_field(field) && !std::holds_alternative<double*>(field))
    fail_usage("{}: '{}' is not numeric: give choices = [..]", at, flag);
  d.kind = is_integer_field(field) ? Dimension::Kind::kInteger : Dimension::Kind::kReal;
  d.min = *lo->value<double>();
  d.max = *hi->value<double>();
  d.log = (*t)["log"].value_or(false);
  if (!(d.min < d.max)) fail_usage("{}: '{}': min must be below max, got {} and {}", at, flag, d.min, d.max);
  if (d.log && d.kind == Dimension::Kind::kInteger)
    fail_usage("{}: '{}': log = true is for real ranges", at, flag);
  if (d.log && d.min <= 0) fail_usage("{}: '{}': a log range needs min > 0", at, flag);
  return d;
}

Constraint parse_constraint(const std::string& text, const std::string& at) {
  Constraint c;
  c.text = text;
  size_t op = text.find("<=");
  if (op == std::string::npos) {
    op = text.find(">=");
    c.at_most = false;
  }
  if (op == std::string::npos)
    fail_usage("{}: constraint '{}' must read NAME <= NUMBER or NAME >= NUMBER", at, text);
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    return s;
  };
  c.metric = trim(text.substr(0, op));
  const std::string number = trim(text.substr(op + 2));
  char* end = nullptr;
  c.bound = std::strtod(number.c_str(), &end);
  if (c.metric.empty() || number.empty() || *end != '\0' || !std::isfinite(c.bound))
    fail_usage("{}: constraint '{}' must read NAME <= NUMBER or NAME >= NUMBER", at, text);
  return c;
}

}  // namespace

std::pair<double, double> Dimension::bounds() const {
  return log ? std::pair{std::log(min), std::log(max)} : std::pair{min, max};
}

std::string Dimension::value_text(double x) const {
  switch (kind) {
    case Kind::kChoice:
      return choices.at(static_cast<size_t>(std::clamp(std::lround(x), 0L, long(choices.size()) - 1)));
    case Kind::kInteger:
      return std::to_string(std::lround(x));
    case Kind::kReal:
      break;
  }
  // Four significant digits: the command line is the trial, so equal texts are one trial.
  return fmt::format("{:.4g}", log ? std::exp(x) : x);
}

double Constraint::violation(double value) const {
  return std::max(0.0, at_most ? value - bound : bound - value);
}

int SearchSpace::integer_dimensions() const {
  int n = 0;
  for (const Dimension& d : dimensions) n += d.is_integer();
  return n;
}

std::vector<std::string> SearchSpace::train_args(const std::vector<double>& x) const {
  std::vector<std::string> args;
  auto add = [&](const std::string& flag, const std::string& text) {
    if (text == "false") return;  // an on/off flag left off
    args.push_back("--" + flag);
    if (text != "true") args.push_back(text);
  };
  for (const auto& [flag, text] : fixed) add(flag, text);
  for (size_t i = 0; i < dimensions.size(); ++i) add(dimensions[i].flag, dimensions[i].value_text(x.at(i)));
  return args;
}

SearchSpace SearchSpace::load(const std::string& path) {
  if (!path_exists(path)) fail_usage("search space {}: no such file", path);
  return parse(read_file(path), path);
}

SearchSpace SearchSpace::parse(const std::string& toml_text, const std::string& origin) {
  toml::table table;
  try {
    table = toml::parse(toml_text, origin);
  } catch (const toml::parse_error& e) {
    fail_usage("{}: {}", where(origin, e.source()), e.description());
  }
  SearchSpace space;
  TrainOptions scratch;
  // Objectives and constraints name metrics; an unknown one would fail every trial, so refuse it now.
  const auto& fields = metric_fields();
  auto check_metric = [&](const std::string& name, const std::string& at) {
    if (!known_objectives().count(name) && !fields.count(name))
      fail_usage("{}: '{}' is no metric triad train writes (e.g. val_loss, wall_s, peak_rss_mib, energy_j)",
                 at, name);
  };

  for (const auto& [key, node] : table) {
    const std::string k(key.str());
    if (k != "objectives" && k != "reference" && k != "constraints" && k != "fixed" && k != "search")
      fail_usage("{}: unknown key '{}' (known: objectives, reference, constraints, [fixed], [search])",
                 where(origin, key.source()), k);
  }
  const toml::array* objectives = table["objectives"].as_array();
  if (!objectives || objectives->empty())
    fail_usage("{}: objectives = [\"val_loss\", ...] is missing: name at least one metric to minimise",
               origin);
  for (const toml::node& o : *objectives) {
    auto name = o.value<std::string>();
    if (!name || name->empty())
      fail_usage("{}: objectives: each must be a metric name", where(origin, o.source()));
    check_metric(*name, where(origin, o.source()));
    space.objectives.push_back(*name);
  }
  const std::string objectives_at = where(origin, objectives->source());
  const toml::array* reference = table["reference"].as_array();
  if (!reference)
    fail_usage("{}: reference = [..] is missing: the hypervolume's reference point, one number per objective",
               objectives_at);
  const std::string reference_at = where(origin, reference->source());
  for (const toml::node& r : *reference) {
    if (!r.is_number()) fail_usage("{}: reference: each must be a number", reference_at);
    space.reference.push_back(*r.value<double>());
  }
  if (space.reference.size() != space.objectives.size())
    fail_usage("{}: reference: {} numbers for {} objectives", reference_at, space.reference.size(),
               space.objectives.size());
  if (const toml::node* c = table.get("constraints")) {
    const toml::array* list = c->as_array();
    if (!list) fail_usage("{}: constraints must be a list of strings", where(origin, c->source()));
    for (const toml::node& item : *list) {
      auto text = item.value<std::string>();
      if (!text) fail_usage("{}: constraints must be a list of strings", where(origin, item.source()));
      space.constraints.push_back(parse_constraint(*text, where(origin, item.source())));
      check_metric(space.constraints.back().metric, where(origin, item.source()));
    }
  }
  std::set<std::string> seen;
  auto flag_of = [&](const toml::key& key) {
    std::string flag(key.str());
    std::replace(flag.begin(), flag.end(), '_', '-');
    if (!seen.insert(flag).second)
      fail_usage("{}: '{}' is both fixed and searched (or given twice)", where(origin, key.source()), flag);
    return flag;
  };
  if (const toml::node* f = table.get("fixed")) {
    if (!f->is_table()) fail_usage("{}: fixed must be a table: [fixed]", where(origin, f->source()));
    for (const auto& [key, value] : *f->as_table()) {
      const std::string at = where(origin, key.source()), flag = flag_of(key);
      space.fixed.emplace_back(flag, scalar_text(value, train_field(scratch, flag, at), at, flag));
    }
  }
  const toml::table* searched = table["search"].as_table();
  if (!searched || searched->empty())
    fail_usage("{}: [search] is missing: give at least one flag with a range or choices", origin);
  std::vector<Dimension> integer;
  for (const auto& [key, value] : *searched) {
    const std::string at = where(origin, key.source()), flag = flag_of(key);
    Dimension d = parse_dimension(value, train_field(scratch, flag, at), at, flag);
    (d.is_integer() ? integer : space.dimensions).push_back(std::move(d));
  }
  for (Dimension& d : integer) space.dimensions.push_back(std::move(d));
  return space;
}

}  // namespace triad::search
