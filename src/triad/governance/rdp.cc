#include "triad/governance/rdp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "triad/core/error.h"

namespace triad {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)), exact when either is -inf.
double log_add(double a, double b) {
  double lo = std::min(a, b), hi = std::max(a, b);
  if (lo == -kInf) return hi;
  return std::log1p(std::exp(lo - hi)) + hi;
}

// log(exp(a) - exp(b)) for a >= b.
double log_sub(double a, double b) {
  if (b == -kInf) return a;
  if (a <= b) {
    if (a == b) return -kInf;
    fail("internal: the RDP series went negative (log {} - log {})", a, b);
  }
  double d = std::expm1(a - b);
  return std::isinf(d) ? a : std::log(d) + b;
}

// log(erfc(x)), accurate where erfc underflows: beyond x = 25 the asymptotic series
// erfc(x) = exp(-x²)/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + 105/(16x⁸) − ...).
double log_erfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  double r = 1 / (x * x);
  double series = 1 - r / 2 + 3 * r * r / 4 - 15 * r * r * r / 8 + 105 * r * r * r * r / 16;
  return -x * x - std::log(x) - 0.5 * std::log(std::numbers::pi) + std::log(series);
}

// log(A_α) for integer α: Σ_i C(α,i) (1−q)^(α−i) q^i exp((i²−i)/(2σ²)), summed in log space.
double log_a_integer(double q, double sigma, uint64_t alpha) {
  double log_a = -kInf;
  double a = static_cast<double>(alpha);
  for (uint64_t k = 0; k <= alpha; ++k) {
    double i = static_cast<double>(k);
    double log_coef = std::lgamma(a + 1) - std::lgamma(i + 1) - std::lgamma(a - i + 1) + i * std::log(q) +
                      (a - i) * std::log1p(-q);
    log_a = log_add(log_a, log_coef + (i * i - i) / (2 * sigma * sigma));
  }
  return log_a;
}

// log(A_α) for fractional α: the integral split at z0 where the two Gaussians' mixture weights cross,
// each half expanded as a binomial series (Mironov et al. 2019, §3.3), summed until the terms drop below
// exp(-30) of the running scale.
double log_a_fractional(double q, double sigma, double alpha) {
  double log_a0 = -kInf, log_a1 = -kInf;
  double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  double log_abs_coef = 0;  // log |C(α, i)|
  bool coef_positive = true;
  for (int i = 0; i < 100000; ++i) {
    double di = i, j = alpha - di;
    double log_t0 = log_abs_coef + di * std::log(q) + j * std::log1p(-q);
    double log_t1 = log_abs_coef + j * std::log(q) + di * std::log1p(-q);
    double log_e0 = std::log(0.5) + log_erfc((di - z0) / (std::numbers::sqrt2 * sigma));
    double log_e1 = std::log(0.5) + log_erfc((z0 - j) / (std::numbers::sqrt2 * sigma));
    double log_s0 = log_t0 + (di * di - di) / (2 * sigma * sigma) + log_e0;
    double log_s1 = log_t1 + (j * j - j) / (2 * sigma * sigma) + log_e1;
    if (coef_positive) {
      log_a0 = log_add(log_a0, log_s0);
      log_a1 = log_add(log_a1, log_s1);
    } else {
      log_a0 = log_sub(log_a0, log_s0);
      log_a1 = log_sub(log_a1, log_s1);
    }
    if (std::max(log_s0, log_s1) < -30) return log_add(log_a0, log_a1);
    // C(α, i+1) = C(α, i) (α − i)/(i + 1)
    log_abs_coef += std::log(std::fabs(alpha - di)) - std::log(di + 1);
    if (alpha - di < 0) coef_positive = !coef_positive;
  }
  fail("internal: the RDP series did not converge (q={}, sigma={}, order={})", q, sigma, alpha);
}

void check_order(double order) {
  if (!(order > 1)) fail("RDP order {} must be greater than 1", order);
}

}  // namespace

DpConversion parse_dp_conversion(std::string_view name) {
  if (name == "improved") return DpConversion::kImproved;
  if (name == "classic") return DpConversion::kClassic;
  fail_usage("conversion '{}' is not improved or classic", name);
}

std::string_view dp_conversion_name(DpConversion conversion) {
  return conversion == DpConversion::kClassic ? "classic" : "improved";
}

std::vector<double> default_rdp_orders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

double sampled_gaussian_rdp(double q, double sigma, double order) {
  if (!(q >= 0 && q <= 1)) fail("sampling rate {} is not in [0, 1]", q);
  if (!(sigma >= 0)) fail("noise multiplier {} is negative", sigma);
  check_order(order);
  if (q == 0) return 0;
  if (sigma == 0) return kInf;
  if (q == 1) return order / (2 * sigma * sigma);
  if (std::isinf(order)) return kInf;
  double log_a = order == std::floor(order) && order < 1e6
                     ? log_a_integer(q, sigma, static_cast<uint64_t>(order))
                     : log_a_fractional(q, sigma, order);
  return log_a / (order - 1);
}

PrivacySpent rdp_to_epsilon(std::span<const double> orders, std::span<const double> rdp, double delta,
                            DpConversion conversion) {
  if (orders.size() != rdp.size() || orders.empty()) fail("internal: orders and RDP values differ in number");
  if (!(delta > 0 && delta < 1)) fail("delta {} is not in (0, 1)", delta);
  PrivacySpent best{kInf, orders[0]};
  for (size_t i = 0; i < orders.size(); ++i) {
    double a = orders[i], r = rdp[i];
    check_order(a);
    if (!(r >= 0)) fail("internal: RDP value {} at order {} is negative", r, a);
    double eps;
    if (conversion == DpConversion::kClassic) {
      eps = r + std::log(1 / delta) / (a - 1);
    } else if (delta * delta + std::expm1(-r) >= 0) {
      eps = 0;  // total variation alone gives (0, δ)
    } else if (a > 1.01) {
      eps = r + std::log1p(-1 / a) - std::log(delta * a) / (a - 1);
    } else {
      eps = kInf;
    }
    if (eps < best.epsilon) best = {eps, a};
  }
  best.epsilon = std::max(0.0, best.epsilon);
  return best;
}

RdpAccountant::RdpAccountant(std::vector<double> orders)
    : orders_(std::move(orders)), rdp_(orders_.size(), 0.0) {
  if (orders_.empty()) fail("an RDP accountant needs at least one order");
  for (double a : orders_) check_order(a);
}

void RdpAccountant::add_steps(double q, double sigma, uint64_t steps) {
  if (history_.empty() || history_.back().q != q || history_.back().sigma != sigma) {
    step_rdp_.resize(orders_.size());
    for (size_t i = 0; i < orders_.size(); ++i) step_rdp_[i] = sampled_gaussian_rdp(q, sigma, orders_[i]);
    history_.push_back({q, sigma, 0});
    base_rdp_ = rdp_;
  }
  history_.back().steps += steps;
  steps_ += steps;
  // base + per-step curve x the segment's steps, not a running sum: the same bits whether the steps come one
  // at a time (training), all at once (`triad privacy epsilon`) or from a checkpoint's history (resume).
  const double n = static_cast<double>(history_.back().steps);
  for (size_t i = 0; i < orders_.size(); ++i) rdp_[i] = base_rdp_[i] + step_rdp_[i] * n;
}

PrivacySpent RdpAccountant::spent(double delta, DpConversion conversion) const {
  return rdp_to_epsilon(orders_, rdp_, delta, conversion);
}

nlohmann::json RdpAccountant::to_json() const {
  nlohmann::json history = nlohmann::json::array();
  for (const Segment& s : history_) history.push_back({s.q, s.sigma, s.steps});
  return {{"orders", orders_}, {"history", history}};
}

RdpAccountant RdpAccountant::from_json(const nlohmann::json& state) {
  try {
    RdpAccountant accountant(state.at("orders").get<std::vector<double>>());
    for (const auto& s : state.at("history"))
      accountant.add_steps(s.at(0).get<double>(), s.at(1).get<double>(), s.at(2).get<uint64_t>());
    return accountant;
  } catch (const nlohmann::json::exception& e) {
    fail("privacy ledger state: expected {{\"orders\": [...], \"history\": [[q, sigma, steps], ...]}} ({})",
         e.what());
  }
}

double noise_for_epsilon(double epsilon, double q, uint64_t steps, double delta, DpConversion conversion,
                         std::span<const double> orders) {
  if (!(epsilon > 0)) fail("target epsilon {} must be positive", epsilon);
  if (q == 0) return 0;  // nothing is sampled: no noise is needed
  std::vector<double> grid =
      orders.empty() ? default_rdp_orders() : std::vector<double>(orders.begin(), orders.end());
  auto eps_at = [&](double sigma) {
    RdpAccountant accountant(grid);
    accountant.add_steps(q, sigma, steps);
    return accountant.spent(delta, conversion).epsilon;
  };
  double lo = 0, hi = 1;
  while (eps_at(hi) > epsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e6) fail("no noise multiplier up to 1e6 reaches epsilon {} at delta {}", epsilon, delta);
  }
  // ε(σ) does not increase with σ: keep eps_at(hi) <= epsilon < eps_at(lo).
  while (hi - lo > 1e-6 * hi) {
    double mid = (lo + hi) / 2;
    (eps_at(mid) <= epsilon ? hi : lo) = mid;
  }
  return hi;
}

}  // namespace triad
