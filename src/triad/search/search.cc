#include "triad/search/search.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/sha256.h"
#include "triad/search/front_report.h"
#include "triad/search/pagmo_module.h"
#include "triad/search/pareto.h"
#include "triad/search/trial.h"
#include "triad/train/relaunch.h"

namespace triad::search {

namespace fs = std::filesystem;

std::vector<double> trial_fitness(const SearchSpace& space, const TrialRecord& trial) {
  std::vector<double> f(space.objectives.size());
  if (trial.status != "ok") {
    for (size_t i = 0; i < f.size(); ++i) f[i] = space.reference[i] + 1000;
    return f;
  }
  if (!trial.feasible) {
    double violation = 0;  // relative to each bound, so that metrics of any unit add up
    for (const Constraint& c : space.constraints) {
      const double v = c.violation(trial.metrics.at(c.metric));
      violation += v / std::max(1e-12, std::abs(c.bound) > 0 ? std::abs(c.bound) : 1.0);
    }
    for (size_t i = 0; i < f.size(); ++i) f[i] = space.reference[i] + 1 + violation;
    return f;
  }
  for (size_t i = 0; i < f.size(); ++i) f[i] = trial.metrics.at(space.objectives[i]);
  return f;
}

namespace {

// Proposes nothing: turns decision vectors into trials, from the journal when they ran before.
class Evaluator {
 public:
  Evaluator(const SearchSpace& space, const SearchOptions& options, Journal& journal)
      : space_(space), options_(options), journal_(journal) {
    std::set<std::string> names(space.objectives.begin(), space.objectives.end());
    for (const Constraint& c : space.constraints) names.insert(c.metric);
    metric_names_.assign(names.begin(), names.end());
    binary_ = options.binary.empty() ? fs::read_symlink("/proc/self/exe").string() : options.binary;
  }

  bool budget_spent() const { return static_cast<int>(consumed_.size()) >= options_.trials; }
  int run_here() const { return run_here_; }

  std::vector<double> evaluate(const std::vector<double>& x) {
    const std::vector<std::string> args = space_.train_args(x);
    const std::string key = trial_key(args);
    if (const TrialRecord* done = journal_.find(args)) {
      consumed_.insert(key);
      return done->fitness;
    }
    // Past the budget a proposal is not run: its penalty only ends the generation it is in.
    if (budget_spent()) {
      std::vector<double> unrun = space_.reference;
      for (double& v : unrun) v += 1e6;
      return unrun;
    }
    consumed_.insert(key);
    return run(x, args).fitness;
  }

 private:
  TrialRecord run(const std::vector<double>& x, const std::vector<std::string>& args) {
    TrialRecord t;
    t.trial = static_cast<int>(journal_.trials().size());
    t.x = x;
    t.args = args;
    const std::string run_dir =
        (fs::path(options_.out_dir) / "trials" / fmt::format("{:04d}", t.trial)).string();
    std::vector<std::string> words = {"triad", "train", "--out", run_dir};
    words.insert(words.end(), args.begin(), args.end());
    t.command = shell_line(words);
    const TrialOutcome outcome = run_trial(binary_, args, run_dir, metric_names_);
    ++run_here_;
    t.status = outcome.ok ? "ok" : "failed";
    t.error = outcome.error;
    t.metrics = outcome.metrics;
    if (t.metrics.count("energy_j") || t.metrics.count("co2_g")) t.energy_source = outcome.energy_source;
    t.feasible = outcome.ok;
    for (const Constraint& c : space_.constraints)
      if (outcome.ok && c.violation(t.metrics.at(c.metric)) > 0) t.feasible = false;
    t.fitness = trial_fitness(space_, t);
    std::vector<std::vector<double>> points;
    for (const TrialRecord& r : journal_.trials())
      if (r.feasible) points.push_back(r.fitness);
    if (t.feasible) points.push_back(t.fitness);
    t.hypervolume = hypervolume(points, space_.reference);
    journal_.append(t);
    print_progress(t);
    return t;
  }

  void print_progress(const TrialRecord& t) const {
    std::string values;
    for (const auto& [name, value] : t.metrics) values += fmt::format(" {} {:.4g}", name, value);
    log_info("trial {:>4} ({}/{}) {}{}{} hypervolume {:.6g}", t.trial, consumed_.size(), options_.trials,
             t.status == "ok" ? (t.feasible ? "ok" : "infeasible") : "failed: " + t.error, values,
             energy_note(t.energy_source), t.hypervolume);
  }

  const SearchSpace& space_;
  const SearchOptions& options_;
  Journal& journal_;
  std::vector<std::string> metric_names_;
  std::string binary_;
  std::set<std::string> consumed_;  // trial keys this invocation proposed within the budget
  int run_here_ = 0;
};

double front_hypervolume(const SearchSpace& space, const std::vector<TrialRecord>& trials) {
  std::vector<std::vector<double>> points;
  for (const TrialRecord& t : trials)
    if (t.feasible) points.push_back(t.fitness);
  return hypervolume(points, space.reference);
}

}  // namespace

SearchResult run_search(const SearchOptions& options) {
  if (options.algorithm != "nsga2" && options.algorithm != "random")
    fail_usage("--algorithm {}: expected nsga2 or random", options.algorithm);
  if (options.trials < 1) fail_usage("--trials must be at least 1, got {}", options.trials);
  const SearchSpace space = SearchSpace::load(options.space_path);
  if (options.algorithm == "nsga2") {
    if (options.population < 5 || options.population % 4 != 0)
      fail_usage("--population {}: NSGA-II needs at least 5 and a multiple of 4 (e.g. 8)",
                 options.population);
    if (space.objectives.size() < 2)
      fail_usage("{}: NSGA-II needs two objectives or more; with one, use --algorithm random",
                 options.space_path);
  }
  make_dirs(options.out_dir);
  const nlohmann::json header = {{"kind", "search"},
                                 {"space_sha256", sha256_hex(read_file(options.space_path))},
                                 {"algorithm", options.algorithm},
                                 {"seed", options.seed},
                                 {"population", options.algorithm == "nsga2" ? options.population : 0}};
  Journal journal((fs::path(options.out_dir) / "journal.jsonl").string(), header);
  if (!journal.trials().empty())
    log_info("search {}: {} finished trials in the journal; they are not run again", options.out_dir,
             journal.trials().size());
  Evaluator evaluator(space, options, journal);
  // Minimise the trial's fitness over the space's bounds, integer dimensions last.
  SearchProblem problem;
  problem.objectives = space.objectives.size();
  problem.integers = static_cast<size_t>(space.integer_dimensions());
  for (const Dimension& d : space.dimensions) {
    problem.lower.push_back(d.bounds().first);
    problem.upper.push_back(d.bounds().second);
  }
  problem.fitness = [&evaluator](const std::vector<double>& x) { return evaluator.evaluate(x); };
  const auto budget_spent = [&evaluator] { return evaluator.budget_spent(); };
  const unsigned seed = static_cast<unsigned>(options.seed);
  if (options.algorithm == "random") {
    // Duplicates (equal command lines) cost nothing; a space smaller than the budget ends the loop.
    pagmo_module().random_search(problem, seed, 50 * options.trials, budget_spent);
  } else {
    const int max_generations = 4 * (options.trials / options.population + 1);  // against a converged space
    pagmo_module().nsga2(problem, seed, options.population, max_generations, budget_spent,
                         [&](int generation) {
                           journal.append_generation(generation, front_hypervolume(space, journal.trials()));
                         });
  }
  SearchResult result;
  result.trials = journal.trials();
  result.trials_run = evaluator.run_here();
  std::vector<std::vector<double>> points;
  std::vector<size_t> feasible;
  for (size_t i = 0; i < result.trials.size(); ++i) {
    if (!result.trials[i].feasible) continue;
    feasible.push_back(i);
    points.push_back(result.trials[i].fitness);
  }
  for (size_t i : pareto_front(points)) result.front.push_back(feasible[i]);
  result.hypervolume = hypervolume(points, space.reference);
  write_front_report(options.out_dir, space, options, result);
  return result;
}

}  // namespace triad::search
