#pragma once
// A command with subcommands of its own (`triad audit verify`, `triad privacy epsilon`): collects the
// subcommands' runners and runs the one that was parsed, after applying its --config file if it has one.

#include <string>
#include <utility>
#include <vector>

#include "triad/cli/cli.h"
#include "triad/core/error.h"

namespace triad::cli {

class CommandGroup {
 public:
  // Adds `triad NAME`, which requires one of the subcommands added to app().
  CommandGroup(CLI::App& root, const std::string& name, const std::string& description,
               const std::string& footer)
      : app_(root.add_subcommand(name, description)) {
    app_->require_subcommand(1);
    app_->fallthrough();  // root flags such as --quiet still work after the subcommand
    app_->footer(footer);
  }

  CLI::App* app() const { return app_; }
  void add(CLI::App* command, Runner runner) { commands_.emplace_back(command, std::move(runner)); }

  Runner runner() const {
    return [commands = commands_]() {
      for (const auto& [command, runner] : commands) {
        if (command->parsed()) {
          apply_config_file(*command);
          return runner();
        }
      }
      return static_cast<int>(ErrorKind::kUsage);
    };
  }

 private:
  CLI::App* app_;
  std::vector<std::pair<CLI::App*, Runner>> commands_;
};

}  // namespace triad::cli
