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

namespace {

// Under a launcher every rank fails on its own; the rank says whose message it is.
void print_error(const std::string& message) {
  const int rank = comm::launch_rank();
  fmt::print(stderr, "triad: error: {}{}\n", rank >= 0 ? fmt::format("rank {}: ", rank) : "", message);
}

// The subcommand of `command` named `word`, or null.
CLI::App* subcommand_named(CLI::App& command, const std::string& word) {
  for (CLI::App* sub : command.get_subcommands({})) {
    if (sub->get_name() == word) return sub;
  }
  return nullptr;
}

// The option `name` ("--out") of `command` or of a command above it (whose flags work after it too).
const CLI::Option* option_named(CLI::App* command, const std::string& name) {
  for (CLI::App* app = command; app; app = app->get_parent()) {
    if (const CLI::Option* option = app->get_option_no_throw(name)) return option;
  }
  return nullptr;
}

// CLI11 took a word that names no command for a stray argument: "triad explain" said "A subcommand is
// required", and "triad explain --help" printed the top-level help with exit code 0.
[[noreturn]] void fail_unknown_command(CLI::App& command, const std::string& word) {
  std::vector<std::string> names;
  for (CLI::App* sub : command.get_subcommands({})) names.push_back(sub->get_name());
  const std::string nearest = nearest_name(word, names);
  std::string path = "triad";
  for (const CLI::App* app = &command; app->get_parent(); app = app->get_parent())
    path.insert(5, " " + app->get_name());
  const std::string shown = path == "triad" ? word : path.substr(6) + " " + word;
  fail_usage("unknown command '{}'{} (the commands: {}; see '{} --help')", shown,
             nearest.empty() ? "" : fmt::format("; did you mean '{}'?", nearest), fmt::join(names, ", "),
             path);
}

// The command line in the reversed order CLI11's parse takes it, once each command word names a command.
// CLI11 (2.1) reads "--name=" as "--name" with no value and then takes the next word as its value:
// "--sample-prompt= --out RUN" made "--out" the prompt and RUN a stray argument. An option that takes a value
// is given the empty string instead.
std::vector<std::string> parse_order(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args;
  CLI::App* command = &app;
  bool options_ended = false;  // after "--" every word is an argument
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    options_ended |= arg == "--";
    if (!options_ended && arg.starts_with("--") && arg.find('=') == arg.size() - 1 && arg.size() > 3) {
      const std::string name = arg.substr(0, arg.size() - 1);
      const CLI::Option* option = option_named(command, name);
      if (option && option->get_items_expected_max() > 0) {
        args.push_back(name);
        args.emplace_back();
        continue;
      }
    }
    if (!options_ended && !arg.starts_with("-") && !command->get_subcommands({}).empty()) {
      CLI::App* sub = subcommand_named(*command, arg);
      if (!sub) fail_unknown_command(*command, arg);
      command = sub;
    }
    args.push_back(arg);
  }
  std::reverse(args.begin(), args.end());
  return args;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{
      "triad: train transformer language models on one machine or many, efficiently, fairly, "
      "explainably and accountably."};
  app.name("triad");
  app.set_version_flag("--version", std::string("triad ") + kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // root flags (--quiet) also work after the subcommand
  bool quiet_flag = false;
  app.add_flag("-q,--quiet", quiet_flag, "Only warnings and errors on stderr (no progress lines)");
  app.footer(
      "Run 'triad COMMAND --help' for a command's flags. Flags may also come from a TOML file: --config "
      "FILE.");
  app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  std::vector<std::pair<CLI::App*, Runner>> commands;
  auto add = [&](Runner (*adder)(CLI::App&)) {
    Runner runner = adder(app);
    commands.emplace_back(app.get_subcommands({}).back(), std::move(runner));
  };
  add(add_prepare_command);
  add(add_train_command);
  add(add_eval_command);
  add(add_generate_command);
  add(add_probe_command);
  add(add_plan_command);
  add(add_audit_command);
  add(add_privacy_command);
  add(add_classify_command);
  add(add_predict_command);
  add(add_fairness_command);
  add(add_launch_command);
  add(add_report_command);

  try {
    try {
      app.parse(parse_order(app, argc, argv));
    } catch (const CLI::CallForHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
      return app.exit(e);
    } catch (const CLI::ParseError& e) {
      // Every rank parses the same command line: one message (from rank 0) says what is wrong with it.
      if (comm::launch_rank() <= 0) {
        std::string command =
            app.get_subcommands().empty() ? "triad" : "triad " + app.get_subcommands()[0]->get_name();
        fmt::print(stderr, "triad: error: {} (see '{} --help')\n", e.what(), command);
      }
      return static_cast<int>(ErrorKind::kUsage);
    }
    set_quiet(quiet_flag);
    for (auto& [command, runner] : commands) {
      if (command->parsed()) {
        apply_config_file(*command);
        return runner();
      }
    }
    return static_cast<int>(ErrorKind::kUsage);
  } catch (const Error& e) {
    print_error(e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    print_error("out of memory");
    return static_cast<int>(ErrorKind::kRuntime);
  } catch (const std::exception& e) {
    print_error(e.what());
    return static_cast<int>(ErrorKind::kRuntime);
  }
}

}  // namespace triad::cli
