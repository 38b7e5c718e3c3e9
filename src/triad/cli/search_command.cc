// `triad search SPACE.toml --out DIR`: multi-objective search over `triad train` configurations
// (docs/search.md).

#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "triad/cli/cli.h"
#include "triad/core/error.h"
#include "triad/core/log.h"
#include "triad/search/search.h"

namespace triad::cli {

Runner add_search_command(CLI::App& root) {
  auto o = std::make_shared<search::SearchOptions>();
  CLI::App* cmd = root.add_subcommand(
      "search", "Multi-objective search over training flags (NSGA-II or random): a Pareto front of trials.");
  cmd->footer(
      "SPACE.toml names the train flags to vary (ranges, choices), fixed flags, objectives to minimise,\n"
      "constraints and the hypervolume's reference point. Each trial is a 'triad train' run in\n"
      "DIR/trials/NNNN, recorded in DIR/journal.jsonl; run the same command again to resume (finished "
      "trials\n"
      "are never rerun). Writes DIR/front.md and DIR/front.svg; prints {\"front\", \"hypervolume\", ...}.\n"
      "See docs/search.md.");
  add_config_option(*cmd);
  cmd->add_option("SPACE", o->space_path, "The search space (TOML)")->type_name("SPACE.toml");
  cmd->add_option("--out", o->out_dir, "The search directory (journal, trials, front)")->type_name("DIR");
  cmd->add_option("--algorithm", o->algorithm, "nsga2 (pagmo's NSGA-II) or random (uniform samples)")
      ->capture_default_str();
  cmd->add_option("--trials", o->trials, "Trials to run in all (those in the journal count)")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--population", o->population, "NSGA-II's population (at least 5, a multiple of 4)")
      ->check(positive())
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the algorithm (the trials' own seeds come from the space)")
      ->capture_default_str();
  return [o]() {
    if (o->space_path.empty()) fail_usage("give the search space, e.g. 'triad search space.toml --out DIR'");
    if (o->out_dir.empty()) fail_usage("give the search directory with --out DIR");
    const search::SearchResult r = search::run_search(*o);
    log_info("search {}: {} trials ({} run now), {} on the front, hypervolume {:.6g}; see {}/front.md",
             o->out_dir, r.trials.size(), r.trials_run, r.front.size(), r.hypervolume, o->out_dir);
    std::vector<int> front;
    for (size_t i : r.front) front.push_back(r.trials[i].trial);
    fmt::print("{}\n", nlohmann::json{{"front", front},
                                      {"hypervolume", r.hypervolume},
                                      {"trials", r.trials.size()},
                                      {"trials_run", r.trials_run},
                                      {"report", o->out_dir + "/front.md"}}
                           .dump());
    return 0;
  };
}

}  // namespace triad::cli
