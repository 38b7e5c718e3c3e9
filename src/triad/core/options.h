#pragma once
// Options declared once. A command's options are a plain struct (the members and their defaults) and one
// table that declares each of them: its name, the member, its help, its --help group, its value check, and
// what happens to it when a run is resumed. Everything else comes from that table: the command-line flags
// (cli/options.h), the TOML config keys (they are the flag names), the JSON of run.json and checkpoints, the
// resume check, and the value checks of options that come from files.
//
//   OptionTable<TrainOptions> t;
//   t.add("lr", &TrainOptions::lr, "Peak learning rate").check(Check::kPositive);
//   t.include(&TrainOptions::model, GptConfig::options());  // a member struct's own table
//
// The JSON key of an option is its name with '_' for '-' ("grad-compression" -> "grad_compression"), in
// one place (Option::key); numbers keep the type they were declared with (a double prints as typed).

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <variant>
#include <vector>

namespace triad {

// When a run is resumed with an option on the command line.
enum class OnResume {
  kMustMatch,   // part of what the run is (model, data, optimisation): another value is refused
  kMayChange,   // how it runs (threads, memory, checkpoints, logging): the command's value if given,
                // else the run's
  kPerCommand,  // how this process talks to others (timeouts, progress): the command's value, given or
                // default, never the run's
};

// Value checks; the CLI applies them to flags, check_options() to options read from files or set in code.
enum class Check {
  kNone,
  kPositive,     // > 0 (a number: finite)
  kNonNegative,  // >= 0 (a number: finite)
  kFraction,     // in [0, 1)
};

// A pointer to the option's member in one options object.
using OptionField = std::variant<bool*, int*, int64_t*, uint64_t*, double*, std::string*>;

template <class Options>
struct Option {
  std::string name;  // the flag without "--"
  std::function<OptionField(Options&)> field;
  std::string help;
  std::string group;  // its --help section; empty: the command's own
  OnResume on_resume = OnResume::kMustMatch;
  Check value_check = Check::kNone;
  std::vector<std::string> choices;  // allowed values of a string option; empty: any
  std::string type_name;             // shown for its value in --help ("SIZE"); empty: from the type
  std::string default_text;          // shown for its default in --help instead of the value ("steps/12")
  bool is_flag = true;               // false: kept in run.json, not a command-line flag (the data's vocab)

  std::string key() const {
    std::string k = name;
    for (char& c : k) c = c == '-' ? '_' : c;
    return k;
  }
  // Declaration helpers, chained after OptionTable::add().
  Option& in_group(std::string g) { return group = std::move(g), *this; }
  Option& check(Check c) { return value_check = c, *this; }
  Option& may_change_on_resume() { return on_resume = OnResume::kMayChange, *this; }
  Option& per_command() { return on_resume = OnResume::kPerCommand, *this; }
  Option& one_of(std::vector<std::string> c) { return choices = std::move(c), *this; }
  Option& value_name(std::string t) { return type_name = std::move(t), *this; }
  Option& shown_default(std::string d) { return default_text = std::move(d), *this; }
  Option& not_a_flag() { return is_flag = false, *this; }
};

template <class Options>
class OptionTable {
 public:
  template <class T>
  Option<Options>& add(std::string name, T Options::*member, std::string help) {
    Option<Options>& o = options_.emplace_back();
    o.name = std::move(name);
    o.field = [member](Options& x) -> OptionField { return &(x.*member); };
    o.help = std::move(help);
    return o;
  }
  // The options of a member struct, declared by its own table; `group` (if given) replaces their groups.
  template <class Inner>
  void include(Inner Options::*member, const OptionTable<Inner>& inner, const std::string& group = "") {
    for (const Option<Inner>& o : inner.all()) {
      Option<Options>& lifted = options_.emplace_back();
      lifted.name = o.name;
      lifted.field = [member, field = o.field](Options& x) { return field(x.*member); };
      lifted.help = o.help;
      lifted.group = group.empty() ? o.group : group;
      lifted.on_resume = o.on_resume;
      lifted.value_check = o.value_check;
      lifted.choices = o.choices;
      lifted.type_name = o.type_name;
      lifted.default_text = o.default_text;
      lifted.is_flag = o.is_flag;
    }
  }
  const std::vector<Option<Options>>& all() const { return options_; }
  const Option<Options>* find(const std::string& name) const {
    for (const Option<Options>& o : options_) {
      if (o.name == name) return &o;
    }
    return nullptr;
  }

 private:
  std::vector<Option<Options>> options_;
};

// Untyped cores of the functions below.
nlohmann::json option_value_json(const OptionField& field);
void set_option_from_json(const OptionField& field, const nlohmann::json& value, const std::string& where,
                          const std::string& key);
// A usage error "--NAME must be ..., got VALUE" when the value fails its check.
void check_option_value(const OptionField& field, const std::string& name, Check check,
                        const std::vector<std::string>& choices);
// The option's value as text, as a user would type it ("0.003", "topk:0.01", "true").
std::string option_value_text(const OptionField& field);
[[noreturn]] void fail_resume_mismatch(const std::string& run_dir, const std::string& key,
                                       const std::string& run_value, const std::string& command_value);

// {key: value} for every option of the table.
template <class Options>
nlohmann::json options_to_json(const OptionTable<Options>& table, const Options& options) {
  Options copy = options;  // fields are reached through non-const pointers
  nlohmann::json j = nlohmann::json::object();
  for (const Option<Options>& o : table.all()) j[o.key()] = option_value_json(o.field(copy));
  return j;
}

// The options of `j`; a key it lacks keeps the default (runs from older versions), an unknown key is
// ignored, a value of the wrong type is an error naming `where` and the key.
template <class Options>
Options options_from_json(const OptionTable<Options>& table, const nlohmann::json& j,
                          const std::string& where, Options options = {}) {
  for (const Option<Options>& o : table.all()) {
    if (j.contains(o.key())) set_option_from_json(o.field(options), j.at(o.key()), where, o.key());
  }
  return options;
}

// Each option's value check (the CLI applies them as flags are parsed; this is for the rest).
template <class Options>
void check_options(const OptionTable<Options>& table, const Options& options) {
  Options copy = options;
  for (const Option<Options>& o : table.all())
    check_option_value(o.field(copy), o.name, o.value_check, o.choices);
}

// The options a resumed run continues with: the run's (`stored`), where the command (`given`, whose
// options named in `given_names` were given explicitly) may change them. A must-match option given with
// another value is a usage error: "--resume RUN: the run was trained with layers = 2, the command asks 3".
template <class Options>
Options options_for_resume(const OptionTable<Options>& table, const Options& stored, const Options& given,
                           const std::set<std::string>& given_names, const std::string& run_dir) {
  Options merged = stored, command = given;
  for (const Option<Options>& o : table.all()) {
    if (!o.is_flag) continue;
    const bool named = given_names.contains(o.name);
    const nlohmann::json mine = option_value_json(o.field(command));
    if (o.on_resume == OnResume::kMustMatch && named) {
      const nlohmann::json theirs = option_value_json(o.field(merged));
      if (mine != theirs) {
        fail_resume_mismatch(run_dir, o.key(), theirs.dump(), mine.dump());
      }
    }
    if (o.on_resume == OnResume::kPerCommand || (o.on_resume == OnResume::kMayChange && named)) {
      set_option_from_json(o.field(merged), mine, "the command line", o.key());
    }
  }
  return merged;
}

}  // namespace triad
