// `triad privacy`: the RDP accountant of DP-SGD from the command line (docs/governance.md).

#include <fmt/format.h>

#include <cmath>
#include <memory>
#include <nlohmann/json.hpp>

#include "triad/cli/cli.h"
#include "triad/cli/command_group.h"
#include "triad/core/error.h"
#include "triad/governance/rdp.h"

namespace triad::cli {

namespace {

struct PrivacyArgs {
  double sample_rate = 0, noise = 0, delta = 1e-5, epsilon = 0, epochs = 0;
  uint64_t steps = 0;
  std::string conversion = "improved";
};

void add_common(CLI::App* cmd, PrivacyArgs& a) {
  add_config_option(*cmd);
  cmd->add_option(
         "--sample-rate", a.sample_rate,
         "Poisson sampling rate q: the chance each example joins a batch (expected batch / dataset size); "
         "required")
      ->type_name("Q")
      ->default_str("");
  cmd->add_option("--steps", a.steps, "Training steps T (this or --epochs)")->type_name("T")->default_str("");
  cmd->add_option("--epochs", a.epochs, "Instead of --steps: epochs E, so T = floor(E / q)")
      ->type_name("E")
      ->default_str("");
  cmd->add_option("--delta", a.delta, "Target delta; below 1/(dataset size) is the usual choice")
      ->type_name("D");
  cmd->add_option(
         "--conversion", a.conversion,
         "RDP to (epsilon, delta): improved (Balle et al. 2020, as Opacus and TF Privacy) or classic "
         "(Mironov 2017)")
      ->check(CLI::IsMember({"improved", "classic"}));
}

// Checks the shared flags and returns the number of steps.
uint64_t checked_steps(const PrivacyArgs& a) {
  if (!(a.sample_rate > 0 && a.sample_rate <= 1))
    fail_usage("--sample-rate must be in (0, 1], got {}", a.sample_rate);
  if (!(a.delta > 0 && a.delta < 1)) fail_usage("--delta must be in (0, 1), got {}", a.delta);
  if ((a.steps > 0) == (a.epochs > 0)) fail_usage("give exactly one of --steps and --epochs");
  uint64_t steps = a.steps > 0 ? a.steps : static_cast<uint64_t>(std::floor(a.epochs / a.sample_rate));
  if (steps == 0)
    fail_usage("--epochs {} at --sample-rate {} is less than one step", a.epochs, a.sample_rate);
  return steps;
}

// What both commands print: epsilon spent by `steps` steps at noise `sigma`, and the inputs.
nlohmann::json report(const PrivacyArgs& a, double sigma, uint64_t steps) {
  RdpAccountant accountant;
  accountant.add_steps(a.sample_rate, sigma, steps);
  PrivacySpent spent = accountant.spent(a.delta, parse_dp_conversion(a.conversion));
  return {{"epsilon", spent.epsilon},     {"order", spent.order},      {"delta", a.delta},
          {"sample_rate", a.sample_rate}, {"noise_multiplier", sigma}, {"steps", steps},
          {"conversion", a.conversion}};
}

}  // namespace

Runner add_privacy_command(CLI::App& root) {
  CommandGroup group(root, "privacy",
                     "Differential-privacy accounting for DP-SGD (RDP of the sampled Gaussian mechanism).",
                     "Orders: Opacus's grid 1.1, 1.2, ..., 10.9, 12, ..., 63. See docs/governance.md.");
  CLI::App* privacy = group.app();

  auto eps = std::make_shared<PrivacyArgs>();
  CLI::App* epsilon =
      privacy->add_subcommand("epsilon", "Epsilon spent by T steps of DP-SGD, and the best RDP order");
  epsilon->footer("Example: triad privacy epsilon --sample-rate 0.004 --noise 1.1 --epochs 60 --delta 1e-5");
  add_common(epsilon, *eps);
  epsilon->add_option("--noise", eps->noise, "Noise multiplier sigma (noise std / clipping norm)")
      ->type_name("SIGMA");
  group.add(epsilon, [eps]() {
    uint64_t steps = checked_steps(*eps);
    if (!(eps->noise > 0)) fail_usage("--noise must be positive, got {}", eps->noise);
    fmt::print("{}\n", report(*eps, eps->noise, steps).dump());
    return 0;
  });

  auto noise = std::make_shared<PrivacyArgs>();
  CLI::App* noise_cmd = privacy->add_subcommand(
      "noise", "Smallest noise multiplier sigma that keeps T steps within (epsilon, delta)");
  noise_cmd->footer(
      "Bisection to a relative 1e-6; the sigma printed meets the target (its epsilon is printed too).");
  add_common(noise_cmd, *noise);
  noise_cmd->add_option("--epsilon", noise->epsilon, "Target epsilon; required")
      ->type_name("E")
      ->default_str("");
  group.add(noise_cmd, [noise]() {
    uint64_t steps = checked_steps(*noise);
    if (!(noise->epsilon > 0)) fail_usage("--epsilon must be positive, got {}", noise->epsilon);
    double sigma = noise_for_epsilon(noise->epsilon, noise->sample_rate, steps, noise->delta,
                                     parse_dp_conversion(noise->conversion));
    nlohmann::json out = report(*noise, sigma, steps);
    out["target_epsilon"] = noise->epsilon;
    fmt::print("{}\n", out.dump());
    return 0;
  });
  return group.runner();
}

}  // namespace triad::cli
