// `triad` itself: the command list, the parse and the one place errors become messages and exit codes. Apart
// from cli.cc (what commands share) so that a program needing only the shared parts — the --config fuzz
// target — does not link every command.
#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

#include "triad/cli/cli.h"
#include "triad/comm/context.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/core/version.h"

namespace triad::cli {

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

// CLI11 took a word that names no command for a stray argument: "triad summarize" said "A subcommand is
// required", and "triad summarize --help" printed the top-level help with exit code 0.
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
  add(add_explain_command);
  add(add_search_command);
  add(add_prune_command);

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
