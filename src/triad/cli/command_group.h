#pragma once
// A command with subcommands of its own (`triad audit verify`, `triad privacy epsilon`): collects the
// subcommands' runners and runs the one that was parsed, after applying its --config file if it has one.

#include <utility>
#include <vector>

#include "triad/cli/cli.h"
#include "triad/core/error.h"

namespace triad::cli {

class CommandGroup {
 public:
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
  std::vector<std::pair<CLI::App*, Runner>> commands_;
};

}  // namespace triad::cli
