// --layout auto and --layout-trials (layout_choice.h): the planner's shortlist, each timed on a trainer
// that writes nothing, and the options of the layout to train.

#include <fmt/format.h>

#include <algorithm>

#include "triad/comm/collectives.h"
#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/core/statistics.h"
#include "triad/train/layout_choice.h"
#include "triad/train/memory_check.h"
#include "triad/train/trainer_impl.h"

namespace triad {

namespace {

// A trial's steps: the first allocates the step's buffers and is not timed; the median of the others is
// its step time.
constexpr int kTrialWarmupSteps = 1;
constexpr int kTrialSteps = 3;

nlohmann::json candidate_json(const LayoutCandidate& c) {
  nlohmann::json j = {{"layout", c.name()},
                      {"train_flags", c.planned.choice.train_flags()},
                      {"predicted_ms", c.predicted_ms()}};
  if (c.measured_ms > 0) j["measured_ms"] = c.measured_ms;
  return j;
}

}  // namespace

double Trainer::time_layout(comm::Context& context, TrainOptions options, std::unique_ptr<Teacher>* teacher) {
  options.out_dir.clear();  // a trial writes nothing: no run directory, no remat plan
  options = fit_training_memory(options, context.world(), false, false);
  std::unique_ptr<Trainer> t(new Trainer(context, options));
  t->impl_->teacher = std::move(*teacher);
  t->open_data();
  t->impl_->model.init_weights(options.seed);
  t->build_step();
  std::vector<double> ms;
  for (int step = 0; step < kTrialWarmupSteps + kTrialSteps; ++step) {
    const Clock::time_point started = Clock::now();
    t->train_step();
    float seconds = static_cast<float>(seconds_since(started));
    comm::allreduce_max(context, &seconds, 1, "--layout-trials: the step's slowest rank");
    if (t->preempted_) fail("stopped by a signal during --layout-trials, before training began");
    if (step >= kTrialWarmupSteps) ms.push_back(1e3 * seconds);
  }
  *teacher = std::move(t->impl_->teacher);
  return median(ms);
}

TrainOptions Trainer::choose_layout(comm::Context& context, const TrainOptions& options,
                                    std::unique_ptr<Teacher>* teacher, nlohmann::json* record) {
  const bool root = context.rank() == 0;
  const LayoutRanking ranking = rank_layouts(context, options);
  LayoutCandidate chosen = ranking.fitting.front();
  std::vector<LayoutCandidate> trials = trial_candidates(ranking.fitting, options.layout_trials);
  const Clock::time_point started = Clock::now();
  if (options.layout_trials > 0 && trials.size() < 2 && root) {
    log_info("--layout-trials {}: no other shape is predicted within {:.0f} % of {}; nothing to time",
             options.layout_trials, 100 * (kTrialMargin - 1), chosen.name());
  }
  if (trials.size() >= 2) {
    for (size_t i = 0; i < trials.size(); ++i) {
      LayoutCandidate& c = trials[i];
      if (root)
        log_info("--layout-trials: timing {} ({} of {}; predicted {} per step)", c.name(), i + 1,
                 trials.size(), format_ms(c.predicted_ms()));
      c.options.validate(context.world());
      c.measured_ms = time_layout(context, c.options, teacher);
      if (root) log_info("--layout-trials: {} measured {} per step", c.name(), format_ms(c.measured_ms));
    }
    chosen = *std::min_element(trials.begin(), trials.end(),
                               [](const auto& a, const auto& b) { return a.measured_ms < b.measured_ms; });
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
