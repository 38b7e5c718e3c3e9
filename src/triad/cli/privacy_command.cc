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
         "Poisson sampling rate q: the chance each example joins a batch (expected batch / dataset size)")
      ->type_name("Q");
  cmd->add_option("--steps", a.steps, "Training steps T")->type_name("T");
  cmd->add_option("--epochs", a.epochs, "Instead of --steps: epochs E, so T = floor(E / q)")->type_name("E");
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

}  // namespace

Runner add_privacy_command(CLI::App& root) {
  CLI::App* privacy = root.add_subcommand(
      "privacy", "Differential-privacy accounting for DP-SGD (RDP of the sampled Gaussian mechanism).");
  privacy->require_subcommand(1);
  privacy->fallthrough();
  privacy->footer("Orders: Opacus's grid 1.1, 1.2, ..., 10.9, 12, ..., 63. See docs/governance.md.");
  CommandGroup group;

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
    RdpAccountant accountant;
    accountant.add_steps(eps->sample_rate, eps->noise, steps);
    PrivacySpent spent = accountant.spent(eps->delta, parse_dp_conversion(eps->conversion));
    fmt::print("{}\n", nlohmann::json{{"epsilon", spent.epsilon},
                                      {"order", spent.order},
                                      {"delta", eps->delta},
                                      {"sample_rate", eps->sample_rate},
                                      {"noise_multiplier", eps->noise},
                                      {"steps", steps},
                                      {"conversion", eps->conversion}}
                           .dump());
    return 0;
  });

  auto noise = std::make_shared<PrivacyArgs>();
  CLI::App* noise_cmd = privacy->add_subcommand(
      "noise", "Smallest noise multiplier sigma that keeps T steps within (epsilon, delta)");
  noise_cmd->footer(
      "Bisection to a relative 1e-6; the sigma printed meets the target (its epsilon is printed too).");
  add_common(noise_cmd, *noise);
  noise_cmd->add_option("--epsilon", noise->epsilon, "Target epsilon")->type_name("E");
  group.add(noise_cmd, [noise]() {
    uint64_t steps = checked_steps(*noise);
    if (!(noise->epsilon > 0)) fail_usage("--epsilon must be positive, got {}", noise->epsilon);
    DpConversion conversion = parse_dp_conversion(noise->conversion);
    double sigma = noise_for_epsilon(noise->epsilon, noise->sample_rate, steps, noise->delta, conversion);
    RdpAccountant accountant;
    accountant.add_steps(noise->sample_rate, sigma, steps);
    PrivacySpent spent = accountant.spent(noise->delta, conversion);
    fmt::print("{}\n", nlohmann::json{{"noise_multiplier", sigma},
                                      {"epsilon", spent.epsilon},
                                      {"order", spent.order},
                                      {"target_epsilon", noise->epsilon},
                                      {"delta", noise->delta},
                                      {"sample_rate", noise->sample_rate},
                                      {"steps", steps},
                                      {"conversion", noise->conversion}}
                           .dump());
    return 0;
  });
  return group.runner();
}

}  // namespace triad::cli
