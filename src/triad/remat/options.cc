#include "triad/remat/options.h"

namespace triad {

const OptionTable<RematOptions>& RematOptions::options() {
  static const OptionTable<RematOptions> table = [] {
    OptionTable<RematOptions> t;
    t.add("remat", &RematOptions::planner,
          "Activation rematerialization: none, full, sqrt, selective, greedy or optimal (default: optimal "
          "with "
          "--activation-memory, else none)")
        .one_of({"", "none", "full", "sqrt", "selective", "greedy", "optimal"})
        .may_change_on_resume();
    t.add("activation-memory", &RematOptions::budget,
          "Budget for activation memory: a size (512MiB, 2GiB) or a fraction of what no remat needs (0.5x)")
        .value_name("SIZE")
        .may_change_on_resume();
    t.add("replan-every", &RematOptions::replan_every,
          "Also re-plan every N steps (plans follow measured recompute costs anyway)")
        .check(Check::kNonNegative)
        .may_change_on_resume();
    return t;
  }();
  return table;
}

}  // namespace triad
