#pragma once
// Rematerialisation planners (paper §3.2.3, Algorithm 1): each turns an ActivationProfile (remat/profile.h)
// and a budget into a RematPlan.
//
// Planners:
//   none       keep everything
//   full       keep only block inputs; recompute each block before its backward
//   sqrt       Chen et al. 2016: keep every ceil(sqrt(L))-th block input, recompute segments
//   selective  Megatron-style: drop the attention probabilities and the GELU output (large, cheap)
//   greedy     Algorithm 1: order units by τ_re / m, store while the stored bytes fit the budget
//   optimal    minimum total recompute time with the simulated peak within the budget, exactly, by dynamic
//              programming over blocks (remat/optimal.h)

#include <cstddef>
#include <string>

#include "triad/model/plan.h"
#include "triad/remat/optimal.h"
#include "triad/remat/profile.h"

namespace triad {

enum class PlannerKind { kNone, kFull, kSqrt, kSelective, kGreedy, kOptimal };
PlannerKind parse_planner(const std::string& name);  // usage error naming the choices
const char* planner_name(PlannerKind kind);

// The plan of `kind`; `budget` (peak activation bytes) steers greedy and optimal. optimal fails with a usage
// error naming the minimum when no plan fits.
RematPlan make_plan(PlannerKind kind, const ActivationProfile& profile, size_t budget);

// "512MiB", "2GiB", "1.5GB", "800MB", "1048576" (bytes) or "0.5x" (that fraction of `none_peak`).
size_t parse_budget(const std::string& text, size_t none_peak);

}  // namespace triad
