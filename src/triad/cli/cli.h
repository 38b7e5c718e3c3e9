#pragma once
// The `triad` command. Each subcommand lives in its own file and registers itself on the root app; what is
// shared between them (the --config file, --threads, locating bundled data) lives in cli.cc.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace triad::cli {

// What runs a subcommand once the command line (and its --config file) is parsed; returns the exit code.
using Runner = std::function<int()>;

Runner add_prepare_command(CLI::App& root);
Runner add_train_command(CLI::App& root);
Runner add_eval_command(CLI::App& root);
Runner add_generate_command(CLI::App& root);
Runner add_probe_command(CLI::App& root);
Runner add_plan_command(CLI::App& root);
Runner add_audit_command(CLI::App& root);
Runner add_privacy_command(CLI::App& root);
Runner add_classify_command(CLI::App& root);
Runner add_predict_command(CLI::App& root);
Runner add_fairness_command(CLI::App& root);
Runner add_launch_command(CLI::App& root);
Runner add_report_command(CLI::App& root);
Runner add_explain_command(CLI::App& root);
Runner add_search_command(CLI::App& root);
Runner add_prune_command(CLI::App& root);

// Adds `--config FILE`: a TOML file whose top-level keys are the subcommand's flag names ("vocab-size" or
// "vocab_size"); flags given on the command line win over the file.
void add_config_option(CLI::App& command);
// Applies the --config file of `command` if one was given. An unknown key, a value of the wrong type or a
// TOML syntax error is a usage error naming file:line:column.
void apply_config_file(CLI::App& command);
// The same for TOML `text` read from `path` (which names the file in errors), whatever --config says.
void apply_config_text(CLI::App& command, std::string_view text, const std::string& path);

// "a,b,c" -> {"a", "b", "c"}; an empty item is a usage error naming `flag` and the list.
std::vector<std::string> split_list(const std::string& flag, const std::string& list);

// Checks for numeric flags whose errors read "--steps: must be positive, got 0" (CLI11's own print a range
// up to 1.8e308).
const CLI::Validator& positive();
const CLI::Validator& non_negative();
// Any number, NaN and infinity included, for real-valued options: their range (shown in --help as
// `shown`, e.g. POSITIVE) is checked with the other options' (check_options), whose messages name the
// value as typed ("--lr must be a positive number, got nan").
CLI::Validator number(const std::string& shown);

// The number of hardware threads, the default for --threads.
int default_threads();
// A path under the repository's data/ folder (bundled corpus, blocklist, prepared data):
// $TRIAD_DATA_DIR if set, else data/ beside the source tree the binary was built from.
std::string data_path(const std::string& relative);

// Entry point: parses, dispatches, and turns every error into one line and an exit code.
int run(int argc, char** argv);

}  // namespace triad::cli
