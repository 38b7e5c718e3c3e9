#pragma once
// Command-line flags from an option table (core/options.h): each option becomes --NAME with its help,
// group, default and check, bound to its member in `target`. The --config file's keys are the same names.

#include <CLI/CLI.hpp>
#include <set>
#include <string>

#include "triad/core/options.h"

namespace triad::cli {

// One flag from its parts (the typed loop below calls it).
void add_flag_for(CLI::App& command, const std::string& name, const OptionField& field,
                  const std::string& help, const std::string& group, Check check,
                  const std::vector<std::string>& choices, const std::string& type_name,
                  const std::string& default_text);

template <class Options>
void add_options(CLI::App& command, const OptionTable<Options>& table, Options& target) {
  for (const Option<Options>& o : table.all()) {
    if (!o.is_flag) continue;
    add_flag_for(command, o.name, o.field(target), o.help, o.group, o.value_check, o.choices, o.type_name,
                 o.default_text);
  }
}

// The options of `table` that were given, on the command line or in the --config file.
template <class Options>
std::set<std::string> given_options(const CLI::App& command, const OptionTable<Options>& table) {
  std::set<std::string> given;
  for (const Option<Options>& o : table.all()) {
    const CLI::Option* flag = o.is_flag ? command.get_option_no_throw("--" + o.name) : nullptr;
    if (flag && flag->count() > 0) given.insert(o.name);
  }
  return given;
}

}  // namespace triad::cli
