// --layout auto and --layout-trials (layout_choice.h): the planner's shortlist, each timed on a trainer
// that writes nothing, and the options of the layout to train.

#include <fmt/format.h>

#include <algorithm>

#include "triad/comm/collectives.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/train/layout_choice.h"
#include "triad/train/memory_check.h"
#include "triad/train/trainer_impl.h"

namespace triad {

namespace {

// Two rounds: every candidate for kFirstSteps timed steps, then the kFinalists fastest for kFinalSteps
// more; a candidate's measure is the median of all its timed steps. Each trial builds its trainer anew, and
// its first step (allocating the step's buffers) is not timed.
constexpr int kFirstSteps = 2;
constexpr int kFinalSteps = 3;
constexpr size_t kFinalists = 3;

nlohmann::json candidate_json(const LayoutCandidate& c) {
  nlohmann::json j = {{"layout", c.name()},
                      {"train_flags", c.planned.choice.train_flags()},
                      {"predicted_ms", c.predicted_ms()}};
  if (!c.trial_ms.empty()) j["measured_ms"] = c.measured_ms();
  if (!c.trial_ms.empty()) j["trial_ms"] = c.trial_ms;
  return j;
}

}  // namespace

std::vector<double> Trainer::time_layout(comm::Context& context, TrainOptions options, int steps,
                                         std::unique_ptr<Teacher>* teacher) {
  options.out_dir.clear();  // a trial writes nothing: no run directory, no remat plan
  options = fit_training_memory(options, context.world(), false, false);
  std::unique_ptr<Trainer> t(new Trainer(context, options));
  t->impl_->teacher = std::move(*teacher);
  t->open_data();
  t->impl_->model.init_weights(options.seed);
  t->build_step();
  std::vector<double> ms;
  for (int step = 0; step <= steps; ++step) {
    const Clock::time_point started = Clock::now();
    t->train_step();
    float seconds = static_cast<float>(seconds_since(started));
    comm::allreduce_max(context, &seconds, 1, "--layout-trials: the step's slowest rank");
    if (t->preempted_) fail("stopped by a signal during --layout-trials, before training began");
    if (step > 0) ms.push_back(1e3 * seconds);
  }
  *teacher = std::move(t->impl_->teacher);
  return ms;
}

TrainOptions Trainer::choose_layout(comm::Context& context, const TrainOptions& options,
                                    std::unique_ptr<Teacher>* teacher, nlohmann::json* record, bool resumed) {
  const bool root = context.rank() == 0;
  const LayoutRanking ranking = rank_layouts(context, options, resumed);
  LayoutCandidate chosen = ranking.fitting.front();
  std::vector<LayoutCandidate> trials = trial_candidates(ranking.fitting, options.layout_trials);
  const Clock::time_point started = Clock::now();
  if (options.layout_trials > 0 && trials.size() < 2 && root) {
    log_info(
        "--layout-trials {}: the shortlist (within {:.0f} % of the fastest prediction, one per shape) "
        "holds only {}; nothing to time",
        options.layout_trials, 100 * (kTrialMargin - 1), chosen.name());
  }
  auto time = [&](LayoutCandidate& c, int steps, const std::string& which) {
    if (root)
      log_info("--layout-trials: timing {} ({}; predicted {} per step)", c.name(), which,
               format_ms(c.predicted_ms()));
    for (double ms : time_layout(context, c.options, steps, teacher)) c.trial_ms.push_back(ms);
    if (root) log_info("--layout-trials: {} measured {} per step", c.name(), format_ms(c.measured_ms()));
  };
  auto faster = [](const LayoutCandidate& a, const LayoutCandidate& b) {
    return a.measured_ms() < b.measured_ms();
  };
  if (trials.size() >= 2) {
    for (size_t i = 0; i < trials.size(); ++i)
      time(trials[i], kFirstSteps, fmt::format("{} of {}", i + 1, trials.size()));
    std::stable_sort(trials.begin(), trials.end(), faster);
    const size_t finalists = std::min(kFinalists, trials.size());
    for (size_t i = 0; i < finalists; ++i)
      time(trials[i], kFinalSteps, fmt::format("finalist {} of {}", i + 1, finalists));
    chosen = *std::min_element(trials.begin(), trials.begin() + finalists, faster);
  }
  *record = candidate_json(chosen);
  (*record)["speeds"] = ranking.speed;
  if (trials.size() >= 2) {
    nlohmann::json timed = nlohmann::json::array();
    for (const LayoutCandidate& c : trials) timed.push_back(candidate_json(c));
    (*record)["trials"] = std::move(timed);
    (*record)["trial_seconds"] = seconds_since(started);
  }
  if (root) log_info("{}", describe_choice(ranking, chosen));
  chosen.options.validate(context.world());
  return chosen.options;
}

}  // namespace triad
