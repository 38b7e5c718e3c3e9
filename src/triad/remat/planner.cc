#include "triad/remat/planner.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>

#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/remat/optimal.h"

namespace triad {

namespace {

RematPlan plan_with(int layers, uint16_t mask) {
  RematPlan plan{std::vector<uint16_t>(static_cast<size_t>(layers), mask)};
  plan.normalize();
  return plan;
}

// Algorithm 1 of the paper. Units are ordered by τ_re / m, most expensive to recompute per byte first, and
// stored while the stored bytes fit what the budget leaves after the memory every plan needs (embedding,
// LM head, backward scratch and one block's units during its backward).
RematPlan greedy_plan(const ActivationProfile& p, size_t budget) {
  const int L = p.layers;
  struct Candidate {
    int block;
    Act kind;
    double ratio;
  };
  std::vector<Candidate> units;
  size_t largest_block = 0;
  for (int l = 0; l < L; ++l) {
    size_t block_bytes = 0;
    for (Act k : block_units()) {
      block_bytes += p.bytes_of(l, k);
      if (k == Act::kBlockOut && l == L - 1) continue;  // always stored
      units.push_back(
          {l, k, p.seconds_of(l, k) / static_cast<double>(std::max<size_t>(1, p.bytes_of(l, k)))});
    }
    largest_block = std::max(largest_block, block_bytes);
  }
  const size_t fixed = p.bytes_of(-1, Act::kEmbed) + p.bytes_of(-1, Act::kLnf) +
                       p.bytes_of(-1, Act::kLogits) + p.bytes_of(-1, Act::kLoss) +
                       p.bytes_of(-1, Act::kScratch) + largest_block + p.bytes_of(L - 1, Act::kBlockOut);
  const size_t m_max = budget > fixed ? budget - fixed : 0;
  std::stable_sort(units.begin(), units.end(),
                   [](const Candidate& a, const Candidate& b) { return a.ratio > b.ratio; });
  RematPlan plan = plan_with(L, 0);
  plan.keep_logits = false;
  size_t total = 0;
  for (const Candidate& u : units) {
    if (total + p.bytes_of(u.block, u.kind) <= m_max) {
      if (u.block < 0) {
        plan.keep_logits = true;
      } else {
        plan.keep[static_cast<size_t>(u.block)] |= unit_bit(u.kind);
      }
      total += p.bytes_of(u.block, u.kind);
    }
  }
  plan.normalize();
  return plan;
}

}  // namespace

PlannerKind parse_planner(const std::string& name) {
  static const std::map<std::string, PlannerKind> kinds = {
      {"none", PlannerKind::kNone},     {"full", PlannerKind::kFull},
      {"sqrt", PlannerKind::kSqrt},     {"selective", PlannerKind::kSelective},
      {"greedy", PlannerKind::kGreedy}, {"optimal", PlannerKind::kOptimal}};
  auto it = kinds.find(name);
  if (it == kinds.end())
    fail_usage("--remat {}: expected none, full, sqrt, selective, greedy or optimal", name);
  return it->second;
}

const char* planner_name(PlannerKind kind) {
  switch (kind) {
    case PlannerKind::kNone:
      return "none";
    case PlannerKind::kFull:
      return "full";
    case PlannerKind::kSqrt:
      return "sqrt";
    case PlannerKind::kSelective:
      return "selective";
    case PlannerKind::kGreedy:
      return "greedy";
    case PlannerKind::kOptimal:
      return "optimal";
  }
  return "?";
}

RematPlan make_plan(PlannerKind kind, const ActivationProfile& p, size_t budget) {
  const int L = p.layers;
  const uint16_t out = unit_bit(Act::kBlockOut);
  switch (kind) {
    case PlannerKind::kNone:
      return RematPlan::keep_all(L);
    case PlannerKind::kFull:
      return plan_with(L, out);
    case PlannerKind::kSqrt: {
      const int k = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(L))));
      RematPlan plan = plan_with(L, 0);
      for (int l = 0; l < L; ++l) {
        if ((l + 1) % k == 0) plan.keep[static_cast<size_t>(l)] = out;  // block l+1 starts a segment
      }
      plan.normalize();
      return plan;
    }
    case PlannerKind::kSelective:
      return plan_with(L,
                       static_cast<uint16_t>(kKeepAll & ~unit_bit(Act::kAttProbs) & ~unit_bit(Act::kGelu)));
    case PlannerKind::kGreedy:
      return greedy_plan(p, budget);
    case PlannerKind::kOptimal: {
      for (int l = 0; l < L; ++l) {
        if (p.bytes_of(-1, Act::kScratch) < p.bytes_of(l, Act::kBlockOut))
          fail("internal: scratch below a block output");
      }
      // The best of the other planners that fits bounds the search (and is the answer on a tie).
      RematPlan best;
      double best_seconds = std::numeric_limits<double>::infinity();
      for (PlannerKind other : {PlannerKind::kNone, PlannerKind::kSelective, PlannerKind::kGreedy,
                                PlannerKind::kFull, PlannerKind::kSqrt}) {
        RematPlan candidate = make_plan(other, p, budget);
        Prediction pr = simulate(candidate, p);
        if (pr.peak_bytes <= budget && pr.recompute_seconds < best_seconds) {
          best = candidate;
          best_seconds = pr.recompute_seconds;
        }
      }
      RematPlan plan = optimal_plan(p, budget, best_seconds);
      if (!plan.keep.empty()) {
        Prediction pr = simulate(plan, p);
        if (pr.peak_bytes > budget) fail("internal: the optimal plan exceeds its budget in simulation");
        if (pr.recompute_seconds < best_seconds) best = plan;
      }
      if (best.keep.empty()) {
        fail_usage("--activation-memory {} is below the minimum any plan needs: {}", format_bytes(budget),
                   format_bytes(minimum_budget(p)));
      }
      return best;
    }
  }
  return RematPlan::keep_all(L);
}

size_t parse_budget(const std::string& text, size_t none_peak) {
  if (text.empty()) fail_usage("--activation-memory: empty");
  if (text.back() == 'x') {
    double fraction = 0;
    const char* end = text.data() + text.size() - 1;
    const auto [stop, ec] = std::from_chars(text.data(), end, fraction);
    if (ec == std::errc() && stop == end && fraction > 0 && std::isfinite(fraction)) {
      return static_cast<size_t>(fraction * static_cast<double>(none_peak));
    }
  } else if (const std::optional<double> bytes = parse_bytes(text); bytes && *bytes > 0) {
    return static_cast<size_t>(*bytes);
  }
  fail_usage("--activation-memory {}: expected a size like 512MiB, 2GiB, 800MB, or a fraction like 0.5x",
             text);
}

}  // namespace triad
