#pragma once
// The rematerialisation flags of `triad train`: which planner, under what activation budget.

#include <string>

#include "triad/core/options.h"

namespace triad {

struct RematOptions {
  std::string planner;   // none|full|sqrt|selective|greedy|optimal; empty: optimal with a budget, else none
  std::string budget;    // --activation-memory: "512MiB" or "0.5x"; empty: no budget
  int replan_every = 0;  // also re-plan every N steps (0: only on drift)

  bool active() const { return !budget.empty() || (!planner.empty() && planner != "none"); }
  // --remat, --activation-memory, --replan-every; all may change on resume (memory, never a gradient).
  static const OptionTable<RematOptions>& options();
};

}  // namespace triad
