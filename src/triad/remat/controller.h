#pragma once
// Tier III in the training loop: profiles the model's units, picks the plan for the budget, reports
// predicted against measured memory, and re-plans when the measured recompute costs drift (paper Fig. 2).
// Every plan in force is appended to RUN/remat_plan.jsonl as {"step", "planner", "budget_bytes",
// "predicted_peak_bytes", "predicted_recompute_ms", "dropped": [[units of block 0], ...]}.

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "triad/remat/planner.h"

namespace triad {

struct RematOptions {
  std::string planner;   // none|full|sqrt|selective|greedy|optimal; empty: optimal with a budget, else none
  std::string budget;    // --activation-memory: "512MiB" or "0.5x"; empty: no budget
  int replan_every = 0;  // also re-plan every N steps (0: only on drift)
  bool active() const { return !budget.empty() || (!planner.empty() && planner != "none"); }
};

class RematController {
 public:
  // Profiles the model on a (B, T) forward, plans and installs the plan; `log_path` receives the plans
  // (empty: not written, as on ranks other than 0).
  RematController(Gpt<float>& model, const RematOptions& options, int B, int T, const std::string& log_path,
                  int step);
  ~RematController();

  // One line for the person at the terminal: budget, predicted peak and overhead.
  std::string summary() const;
  // After each optimizer step: refreshes the unit times, re-plans if needed, and adds
  // predicted_peak_activation_bytes and recompute_ms to the step's record.
  void after_step(int step, double recompute_seconds, nlohmann::json* record);

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
