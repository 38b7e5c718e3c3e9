#pragma once
// Tier III in the training loop: profiles the model's units, picks the plan for the budget, reports
// predicted against measured memory, and re-plans when the measured recompute costs drift (paper Fig. 2).
// Every plan in force is appended to RUN/remat_plan.jsonl as {"step", "planner", "budget_bytes",
// "predicted_peak_bytes", "predicted_recompute_ms", "dropped": [[units of block 0], ...]}.

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "triad/model/gpt.h"
#include "triad/remat/options.h"
#include "triad/remat/planner.h"

namespace triad {

// Takes the op times of the model's last forward into the profile; `weight` in (0, 1] blends them into
// the profile's (1: replace). Returns the largest relative change of a unit's time.
double update_profile_times(ActivationProfile* profile, const Gpt<float>& model, double weight);

class RematController {
 public:
  // Profiles the model on a (B, T) forward, plans and installs the plan; `log_path` receives the plans
  // (empty: not written, as on ranks other than 0). A pipeline stage plans its own blocks for each of the
  // `in_flight` micro-batches its schedule keeps at once: an --activation-memory of A bytes gives each
  // A / in_flight (a fraction "0.5x" stays a fraction of one micro-batch's peak).
  RematController(Gpt<float>& model, const RematOptions& options, int B, int T, const std::string& log_path,
                  int step, int in_flight = 1);
  ~RematController();

  // One line for the person at the terminal: budget, predicted peak and overhead.
  std::string summary() const;
  // After each optimizer step, given the step's measured recompute time: refreshes the unit times,
  // re-plans if needed, and returns what the step record reports.
  struct StepReport {
    size_t predicted_peak_bytes = 0;  // of the plan in force, with the refreshed times
    double recompute_ms = 0;
  };
  StepReport after_step(int step, double recompute_seconds);

 private:
  void plan(int step, const char* why);

  Gpt<float>& model_;
  RematOptions options_;
  PlannerKind kind_;
  ActivationProfile profile_;
  size_t budget_ = 0, none_peak_ = 0;
  RematPlan plan_;
  Prediction predicted_, planned_;
  double forward_seconds_ = 0;
  FILE* log_ = nullptr;
};

}  // namespace triad
