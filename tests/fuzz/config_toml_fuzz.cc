// The --config TOML file (cli/cli.h, apply_config_text): the input as the config text of `triad train` and
// of `triad prepare`, applied to a fresh command line each time.
#include <CLI/CLI.hpp>

#include "fuzz_util.h"
#include "triad/cli/cli.h"

namespace {

void apply(triad::cli::Runner (*add)(CLI::App&), std::string_view text) {
  CLI::App root("triad");
  root.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  triad::cli::Runner run = add(root);  // owns the values the flags are bound to
  CLI::App* command = root.get_subcommands({}).back();
  triad::fuzz::expect_clean([&] { triad::cli::apply_config_text(*command, text, "fuzz.toml"); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = triad::fuzz::as_text(data, size);
  apply(triad::cli::add_train_command, text);
  apply(triad::cli::add_prepare_command, text);
  return 0;
}
