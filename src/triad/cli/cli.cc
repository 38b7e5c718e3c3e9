#include "triad/cli/cli.h"

#include <fmt/format.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "triad/comm/context.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/core/version.h"

namespace triad::cli {

namespace {

std::string config_value_string(const toml::node& node, const std::string& where, const std::string& key) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) return fmt::format("{}", f->get());
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  fail_usage("{}: key '{}' must be a string, number, boolean or an array of them", where, key);
}

std::string location(const std::string& path, const toml::source_region& source) {
  return fmt::format("{}:{}:{}", path, source.begin.line, source.begin.column);
}

// A validator that parses the flag's text as a number and checks it with `ok`.
CLI::Validator number_check(const char* what, const char* help, bool (*ok)(double)) {
  return CLI::Validator(
      [what, ok](std::string& text) -> std::string {
        double value = 0;
        try {
          size_t used = 0;
          value = std::stod(text, &used);
          if (used != text.size()) throw std::invalid_argument(text);
        } catch (const std::exception&) {
          return fmt::format("must be a number, got '{}'", text);
        }
        return ok(value) ? std::string() : fmt::format("must be {}, got {}", what, text);
      },
      help);
}

}  // namespace

const CLI::Validator& positive() {
  static const CLI::Validator check = number_check("positive", "POSITIVE", [](double x) { return x > 0; });
  return check;
}

std::vector<std::string> split_list(const std::string& flag, const std::string& list) {
  std::vector<std::string> items;
  for (size_t start = 0; start <= list.size();) {
    const size_t end = std::min(list.find(',', start), list.size());
    items.push_back(list.substr(start, end - start));
    if (items.back().empty()) fail_usage("{} {}: an empty item in the list", flag, list);
    start = end + 1;
  }
  return items;
}

const CLI::Validator& non_negative() {
  static const CLI::Validator check =
      number_check("non-negative", "NONNEGATIVE", [](double x) { return x >= 0; });
  return check;
}

CLI::Validator number(const std::string& shown) {
  CLI::Validator check = number_check("a number", "", [](double) { return true; });
  check.description(shown);
  return check;
}

void add_config_option(CLI::App& command) {
  command
      .add_option("--config",
                  "TOML file of flags for this command (keys are flag names; flags given here win)")
      ->type_name("FILE");
}

void apply_config_file(CLI::App& command) {
  CLI::Option* config = command.get_option_no_throw("--config");
  if (!config || config->count() == 0) return;  // a command group (audit, privacy) has no --config itself
  std::string path = config->as<std::string>();
  if (!std::filesystem::is_regular_file(path)) fail_usage("--config {}: no such file", path);
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    fail_usage("--config: {}", e.what());
  }
  apply_config_text(command, text, path);
}

void apply_config_text(CLI::App& command, std::string_view text, const std::string& path) {
  const CLI::Option* config = command.get_option_no_throw("--config");
  std::string name = "triad " + command.get_name();
  toml::table table;
  try {
    table = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    fail_usage("{}: {}", location(path, e.source()), e.description());
  }
  for (const auto& [raw_key, node] : table) {
    std::string key(raw_key.str());
    std::string where = location(path, raw_key.source());
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');
    CLI::Option* option = command.get_option_no_throw("--" + flag);
    if (!option || option == config || flag == "help") {
      std::vector<std::string> keys;
      for (const CLI::Option* o : command.get_options()) {
        if (o->get_lnames().empty() || o == config || o->get_lnames()[0] == "help") continue;
        keys.push_back(o->get_lnames()[0]);
      }
      fail_usage("{}: unknown key '{}' for '{}' (known keys: {})", where, key, name, fmt::join(keys, ", "));
    }
    if (option->count() > 0) continue;  // the command line wins
    std::vector<std::string> values;
    if (auto array = node.as_array()) {
      for (const auto& element : *array) values.push_back(config_value_string(element, where, key));
      // CLI11 converts a flag's value from its first result, so a flag given no value at all is refused here.
      if (values.empty())
        fail_usage("{}: '{}' is an empty list; give it a value or leave the key out", where, key);
    } else if (node.is_table()) {
      fail_usage("{}: '{}' is a table; put the flags of '{}' at the top level", where, key, name);
    } else {
      values.push_back(config_value_string(node, where, key));
    }
    try {
      option->add_result(values);
      option->run_callback();
    } catch (const CLI::Error& e) {
      fail_usage("{}: key '{}': {}", where, key, e.what());
    }
  }
}

int default_threads() {
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string data_path(const std::string& relative) {
  const char* env = std::getenv("TRIAD_DATA_DIR");
  std::filesystem::path base =
      env && *env ? std::filesystem::path(env) : std::filesystem::path(TRIAD_SOURCE_DIR) / "data";
  return (base / relative).string();
}

}  // namespace triad::cli
