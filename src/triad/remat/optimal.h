#pragma once
// The optimal rematerialisation planner: the plan with the least total recompute time whose simulated peak
// fits a budget, exactly, by dynamic programming over blocks with branch and bound (the memory model and
// the search are described in optimal.cc).

#include <cstddef>

#include "triad/model/plan.h"
#include "triad/remat/profile.h"

namespace triad {

// The least-recompute plan whose peak is within `budget`; an empty plan when none fits or none beats
// `known_seconds`, the recompute time of a plan known to fit.
RematPlan optimal_plan(const ActivationProfile& profile, size_t budget, double known_seconds);

// The least peak any plan reaches (what optimal needs at the least).
size_t minimum_budget(const ActivationProfile& profile);

}  // namespace triad
