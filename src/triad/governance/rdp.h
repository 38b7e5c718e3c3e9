#pragma once
// Privacy accounting for DP-SGD: the Rényi differential privacy (RDP) of the sampled Gaussian mechanism
// (Mironov, Talwar & Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism", §3.3),
// composed over steps by adding RDP order by order, and converted to (ε, δ)-DP.
//
// One step: every example joins the batch independently with probability q (Poisson sampling) and the sum
// of the clipped gradients gets N(0, σ²C²) noise. Its RDP at order α > 1 is log(A_α)/(α−1), where
//   A_α = E_{z~N(0,σ²)} [ ((1−q) + q·exp((2z−1)/(2σ²)))^α ],
// computed exactly by the binomial expansion for integer α and by the paper's two-sided series with erfc
// for fractional α (q = 1 gives the plain Gaussian, α/(2σ²)).
//
// (ε, δ) from RDP, minimised over the orders:
//   classic   ε = RDP(α) + log(1/δ)/(α−1)                                (Mironov 2017, Prop. 3)
//   improved  ε = RDP(α) + log((α−1)/α) − (log δ + log α)/(α−1)          (Balle et al. 2020, Thm. 21)
// The improved conversion is the default, as in Opacus and TensorFlow Privacy; like Google's dp_accounting
// it reports ε = 0 when δ² ≥ 1 − exp(−RDP(α)) and skips orders ≤ 1.01, where it is numerically unstable.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <vector>

namespace triad {

enum class DpConversion { kImproved, kClassic };
DpConversion parse_dp_conversion(std::string_view name);  // "improved" | "classic"
std::string_view dp_conversion_name(DpConversion conversion);

// Opacus's default grid: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63.
std::vector<double> default_rdp_orders();

// RDP of one step of the sampled Gaussian mechanism at `order` (> 1; +inf allowed). Infinite when σ = 0.
double sampled_gaussian_rdp(double q, double sigma, double order);

struct PrivacySpent {
  double epsilon = 0;
  double order = 0;  // the order that gave the smallest ε
};

// The smallest ε over the orders for the given RDP curve; infinite when no order gives a finite one.
PrivacySpent rdp_to_epsilon(std::span<const double> orders, std::span<const double> rdp, double delta,
                            DpConversion conversion = DpConversion::kImproved);

// Accumulates the RDP of the steps a run has taken. Steps with the same (q, σ) as the previous ones reuse
// that per-step curve, so add_steps costs O(orders) per call after the first. The result depends only on
// the history [(q, σ, steps)], not on how the steps were added: one at a time, in bulk or via from_json
// give the same bits.
class RdpAccountant {
 public:
  explicit RdpAccountant(std::vector<double> orders = default_rdp_orders());

  void add_steps(double q, double sigma, uint64_t steps = 1);
  PrivacySpent spent(double delta, DpConversion conversion = DpConversion::kImproved) const;

  uint64_t steps() const { return steps_; }
  const std::vector<double>& orders() const { return orders_; }
  const std::vector<double>& rdp() const { return rdp_; }

  // {"orders": [...], "history": [[q, sigma, steps], ...]}: what a checkpoint saves to resume the ledger.
  nlohmann::json to_json() const;
  static RdpAccountant from_json(const nlohmann::json& state);

 private:
  struct Segment {
    double q, sigma;
    uint64_t steps;
  };
  std::vector<double> orders_;
  std::vector<double> rdp_;
  std::vector<double> step_rdp_;  // the per-step curve of the last segment
  std::vector<double> base_rdp_;  // the RDP of all segments before the last
  std::vector<Segment> history_;
  uint64_t steps_ = 0;
};

// The smallest noise multiplier σ (to a relative 1e-6) for which `steps` steps at sampling rate q stay
// within (epsilon, delta). Fails when even σ = 1e6 does not.
double noise_for_epsilon(double epsilon, double q, uint64_t steps, double delta,
                         DpConversion conversion = DpConversion::kImproved,
                         std::span<const double> orders = {});

}  // namespace triad
