#include "triad/remat/controller.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"

namespace triad {

namespace {

double forward_total(const ActivationProfile& p) {
  double s = 0;
  for (const auto& row : p.seconds) {
    for (double t : row) s += t;
  }
  return s;
}

}  // namespace

double update_profile_times(ActivationProfile* profile, const Gpt<float>& model, double weight) {
  double change = 0;
  for (int l = -1; l < profile->layers; ++l) {
    for (size_t k = 0; k < static_cast<size_t>(Act::kCount); ++k) {
      const double now = model.unit_seconds(l, static_cast<Act>(k));
      double& have = profile->seconds_at(l, static_cast<Act>(k));
      if (have > 0) change = std::max(change, std::fabs(now - have) / have);
      have = have > 0 ? (1 - weight) * have + weight * now : now;
    }
  }
  return change;
}

namespace {

// Under tensor parallelism the ranks of a tensor group must hold one plan: recomputing a unit runs its
// collectives (the row-parallel projections' sums), so a unit dropped on one rank and kept on another
// would call them in different orders and hang. Each rank's measured times differ, so the profile takes
// their mean over the group before any plan is made from it.
void agree_on_times(ActivationProfile* profile, const Gpt<float>& model) {
  const int ranks = model.shard().tensor_size;
  if (ranks == 1) return;
  std::vector<float> times;
  for (const auto& block : profile->seconds) times.insert(times.end(), block.begin(), block.end());
  model.tensor_group()->sum(times.data(), times.size(), "remat: sharing the measured unit times");
  size_t i = 0;
  for (auto& block : profile->seconds) {
    for (double& t : block) t = times[i++] / ranks;
  }
}

}  // namespace

RematController::RematController(Gpt<float>& model, const RematOptions& options, int B, int T,
                                 const std::string& log_path, int step, int in_flight)
    : model_(model), options_(options) {
  kind_ = options.planner.empty() ? (options.budget.empty() ? PlannerKind::kNone : PlannerKind::kOptimal)
                                  : parse_planner(options.planner);
  GptConfig stage = model.config();  // a pipeline stage: its own blocks
  stage.layers = model.shard().blocks;
  profile_ = ActivationProfile::for_shape(stage, B, T, model.shard().tensor_size);
  // Profile: one forward that keeps nothing, on a batch of token 0 (a later stage: of zero activations;
  // the kernels' time does not depend on the values).
  std::vector<int32_t> tokens(static_cast<size_t>(B) * T, 0);
  std::vector<float> input(model.shard().embedding ? 0 : tokens.size() * stage.d_model, 0.0f);
  model.forward(tokens.data(), tokens.data(), B, T, Gpt<float>::Pass::kInference,
                input.empty() ? nullptr : input.data());
  model.release_activations();
  update_profile_times(&profile_, model, 1.0);
  agree_on_times(&profile_, model);
  none_peak_ = simulate(RematPlan::keep_all(stage.layers), profile_).peak_bytes;
  budget_ = options.budget.empty() ? std::numeric_limits<size_t>::max()
                                   : parse_budget(options.budget, none_peak_ * in_flight) / in_flight;
  if (!log_path.empty()) {
    log_ = std::fopen(log_path.c_str(), "a");
    if (!log_) fail("cannot open {}: {}", log_path, errno_text());
  }
  plan(step, "start");
}

RematController::~RematController() {
  if (log_) std::fclose(log_);
}

void RematController::plan(int step, const char* why) {
  RematPlan next = make_plan(kind_, profile_, budget_);
  Prediction pr = simulate(next, profile_);
  if (!options_.budget.empty() && pr.peak_bytes > budget_) {
    fail_usage(
        "--remat {} needs {} of activations at this shape, over the --activation-memory budget of {}; use "
        "--remat optimal or a larger budget",
        planner_name(kind_), format_bytes(pr.peak_bytes), format_bytes(budget_));
  }
  planned_ = predicted_ = pr;
  forward_seconds_ = forward_total(profile_);
  if (next == plan_) return;
  plan_ = next;
  model_.set_remat_plan(plan_);
  nlohmann::json line = {{"step", step},
                         {"why", why},
                         {"planner", planner_name(kind_)},
                         {"budget_bytes", options_.budget.empty() ? 0 : budget_},
                         {"predicted_peak_bytes", pr.peak_bytes},
                         {"predicted_recompute_ms", pr.recompute_seconds * 1e3},
                         {"dropped", plan_.to_json()},
                         {"logits_recomputed", !plan_.keep_logits}};
  if (!log_) return;
  std::string text = line.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), log_);
  std::fflush(log_);
}

std::string RematController::summary() const {
  // A training step costs about three forwards (forward + a backward of twice the work).
  const double overhead = planned_.recompute_seconds / std::max(1e-12, 3 * forward_seconds_);
  return fmt::format(
      "remat {}: budget {}, predicted peak {} ({:.0f}% of {} without remat), {} units recomputed, "
      "predicted overhead {:.1f}% ({:.1f} ms per micro-batch)",
      planner_name(kind_), options_.budget.empty() ? "none" : format_bytes(budget_),
      format_bytes(planned_.peak_bytes), 100.0 * planned_.peak_bytes / none_peak_, format_bytes(none_peak_),
      plan_.dropped_units(), 100 * overhead, planned_.recompute_seconds * 1e3);
}

RematController::StepReport RematController::after_step(int step, double recompute_seconds) {
  update_profile_times(&profile_, model_, 0.2);
  agree_on_times(&profile_, model_);
  predicted_ = simulate(plan_, profile_);
  const StepReport report{.predicted_peak_bytes = predicted_.peak_bytes,
                          .recompute_ms = recompute_seconds * 1e3};
  if (kind_ != PlannerKind::kGreedy && kind_ != PlannerKind::kOptimal) return report;
  const double drift = std::fabs(predicted_.recompute_seconds - planned_.recompute_seconds) /
                       std::max(1e-9, planned_.recompute_seconds);
  if (options_.replan_every > 0 && step % options_.replan_every == 0) {
    plan(step, "every");
  } else if (drift > 0.25) {
    plan(step, "drift");
  }
  return report;
}

}  // namespace triad
