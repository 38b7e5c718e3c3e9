// triad search (src/triad/search/): the space file's errors, the front and hypervolume against brute force
// and hand computations, the journal and resume (with a fake trainer: a shell script that writes the metrics
// a real run would, from its flags, in milliseconds), and one tiny real search end to end.

#include "triad/search/search.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/search/pareto.h"
#include "triad/search/trial.h"

namespace triad::search {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_text;

// The usage error a space text gets, or "" when it parses.
std::string space_error(const std::string& text) {
  try {
    SearchSpace::parse(text, "space.toml");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage) << e.what();
    return e.what();
  }
  return "";
}

const char* kHeader = "objectives = [\"val_loss\", \"wall_s\"]\nreference = [10.0, 100.0]\n";

TEST(SearchSpace, ErrorsNameFileLineAndField) {
  EXPECT_THAT(space_error(std::string(kHeader) +
                          "[search]\nlr = { min = 1e-4, max = 1e-2 }\nlayrs = { min = 1, max = 3 }\n"),
              HasSubstr("space.toml:5: 'layrs' is not a 'triad train' flag"));
  EXPECT_THAT(space_error(std::string(kHeader) + "[search]\nlayers = { min = 1.5, max = 3 }\n"),
              HasSubstr("space.toml:4: 'layers' takes an integer"));
  EXPECT_THAT(space_error(std::string(kHeader) + "[search]\nlr = { min = 0.1, max = 0.01 }\n"),
              HasSubstr("space.toml:4: 'lr': min must be below max"));
  EXPECT_THAT(space_error(std::string(kHeader) + "[search]\nlr = { min = 0, max = 0.01, log = true }\n"),
              HasSubstr("space.toml:4: 'lr': a log range needs min > 0"));
  EXPECT_THAT(
      space_error(std::string(kHeader) + "[fixed]\nout = \"x\"\n[search]\nlr = { min = 0.1, max = 1.0 }\n"),
      HasSubstr("space.toml:4: --out is set by the search"));
  EXPECT_THAT(
      space_error(std::string(kHeader) + "[fixed]\nlr = 0.1\n[search]\nlr = { min = 0.1, max = 1.0 }\n"),
      HasSubstr("space.toml:6: 'lr' is both fixed and searched"));
  EXPECT_THAT(
      space_error(
          "objectives = [\"val_loss\"]\nreference = [1.0, 2.0]\n[search]\nlr = { min = 0.1, max = 1.0 }\n"),
      HasSubstr("space.toml:2: reference: 2 numbers for 1 objectives"));
  EXPECT_THAT(space_error("objectives = [\"val_loss\",\n \"speed\"]\nreference = [1.0, 2.0]\n[search]\nlr = "
                          "{ min = 0.1, max = 1.0 }\n"),
              HasSubstr("space.toml:2: 'speed' is no metric"));
  EXPECT_THAT(space_error(std::string(kHeader) +
                          "constraints = [\"peak_rss_mib < 3\"]\n[search]\nlr = { min = 0.1, max = 1.0 }\n"),
              HasSubstr("space.toml:3: constraint 'peak_rss_mib < 3' must read NAME <= NUMBER"));
  EXPECT_THAT(space_error(std::string(kHeader) + "[search]\nlr = { min = 0.1 max = 1.0 }\n"),
              HasSubstr("space.toml:4:"));
  EXPECT_THAT(space_error(std::string(kHeader) + "[search]\nremat = { choices = [] }\n"),
              HasSubstr("space.toml:4: 'remat': choices is empty"));
  EXPECT_EQ(space_error(std::string(kHeader) + "[search]\nlr = { min = 0.1, max = 1.0 }\n"), "");
}

TEST(SearchSpace, DecisionVectorsBecomeTrainFlagsRealDimensionsFirst) {
  const SearchSpace s = SearchSpace::parse(std::string(kHeader) +
                                               "constraints = [\"peak_rss_mib <= 2000\"]\n"
                                               "[fixed]\nsteps = 20\nthreads = 2\n"
                                               "[search]\nlayers = { min = 1, max = 4 }\n"
                                               "lr = { min = 1e-4, max = 1e-2, log = true }\n"
                                               "remat = { choices = [\"none\", \"sqrt\"] }\n",
                                           "space.toml");
  ASSERT_EQ(s.dimensions.size(), 3u);
  EXPECT_EQ(s.dimensions[0].flag, "lr");  // pagmo: integer dimensions last
  EXPECT_EQ(s.integer_dimensions(), 2);
  EXPECT_DOUBLE_EQ(s.dimensions[0].bounds().first, std::log(1e-4));
  ASSERT_EQ(s.constraints.size(), 1u);
  EXPECT_DOUBLE_EQ(s.constraints[0].violation(2500), 500);
  EXPECT_EQ(s.constraints[0].violation(1500), 0);
  EXPECT_THAT(s.train_args({std::log(1e-3), 3, 1}),
              ::testing::ElementsAre("--steps", "20", "--threads", "2", "--lr", "0.001", "--layers", "3",
                                     "--remat", "sqrt"));
}

// Brute force: i is on the front when no j is <= in every coordinate and < in one.
std::vector<size_t> brute_front(const std::vector<std::vector<double>>& p) {
  std::vector<size_t> front;
  for (size_t i = 0; i < p.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < p.size() && !dominated; ++j) {
      bool no_worse = true, better = false;
      for (size_t k = 0; k < p[i].size(); ++k) {
        no_worse = no_worse && p[j][k] <= p[i][k];
        better = better || p[j][k] < p[i][k];
      }
      dominated = no_worse && better;
    }
    if (!dominated) front.push_back(i);
  }
  return front;
}

// Exact hypervolume by brute force: the grid of every point's coordinates (and the reference) cut into
// boxes, each box counted when some point dominates its lower corner.
double brute_hypervolume(const std::vector<std::vector<double>>& p, const std::vector<double>& ref) {
  const size_t d = ref.size();
  std::vector<std::vector<double>> grid(d);
  for (size_t k = 0; k < d; ++k) {
    grid[k].push_back(ref[k]);
    for (const auto& q : p)
      if (q[k] < ref[k]) grid[k].push_back(q[k]);
    std::sort(grid[k].begin(), grid[k].end());
    grid[k].erase(std::unique(grid[k].begin(), grid[k].end()), grid[k].end());
  }
  double volume = 0;
  std::vector<size_t> cell(d, 0);
  while (true) {
    bool inside = true;
    for (size_t k = 0; k < d; ++k) inside = inside && cell[k] + 1 < grid[k].size();
    if (inside) {
      bool covered = false;
      for (const auto& q : p) {
        bool dominates = true;
        for (size_t k = 0; k < d; ++k) dominates = dominates && q[k] <= grid[k][cell[k]];
        covered = covered || dominates;
      }
      if (covered) {
        double box = 1;
        for (size_t k = 0; k < d; ++k) box *= grid[k][cell[k] + 1] - grid[k][cell[k]];
        volume += box;
      }
    }
    size_t k = 0;
    while (k < d && ++cell[k] >= grid[k].size()) cell[k++] = 0;
    if (k == d) break;
  }
  return volume;
}

TEST(SearchPareto, HandComputedTwoObjectiveFrontAndArea) {
  // (1,3), (2,2), (3,1) on the front, (3,3) behind (2,2), (5,0.5) outside the reference (4, 4).
  const std::vector<std::vector<double>> p = {{1, 3}, {3, 3}, {2, 2}, {3, 1}, {5, 0.5}};
  EXPECT_THAT(pareto_front(p), ::testing::ElementsAre(0, 2, 3, 4));
  // Staircase under (4,4): [1,2]x[3,4] + [2,3]x[2,4] + [3,4]x[1,4] = 1 + 2 + 3.
  EXPECT_DOUBLE_EQ(hypervolume(p, {4, 4}), 6.0);
  EXPECT_EQ(hypervolume({{5, 5}}, {4, 4}), 0.0);
  EXPECT_DOUBLE_EQ(hypervolume({{1}, {3}}, {4}), 3.0);
}

TEST(SearchPareto, FrontAndHypervolumeMatchBruteForce) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 10);
  for (size_t dims : {2u, 3u}) {
    for (int round = 0; round < 5; ++round) {
      std::vector<std::vector<double>> p(15, std::vector<double>(dims));
      for (auto& q : p)
        for (double& v : q) v = std::round(u(rng) * 4) / 4;  // ties and equal points happen
      const std::vector<double> ref(dims, 9.0);
      EXPECT_EQ(pareto_front(p), brute_front(p));
      EXPECT_NEAR(hypervolume(p, ref), brute_hypervolume(p, ref), 1e-9);
    }
  }
}

// A fake `triad train`: writes the metrics.jsonl a run would, val_loss and wall_s from --lr and --layers,
// fails for --layers 4 (as a bad flag combination would), and appends a line to LAUNCHES per run.
std::string fake_trainer(const TempDir& dir) {
  const std::string script = dir / "fake-triad";
  write_text(script,
             "#!/bin/sh\n"
             "echo run >> " +
                 dir / "launches" +
                 "\n"
                 "out=; lr=; layers=\n"
                 "while [ $# -gt 0 ]; do case $1 in --out) out=$2; shift;; --lr) lr=$2; shift;; --layers) "
                 "layers=$2; shift;;"
                 " esac; shift; done\n"
                 "if [ \"$layers\" = 4 ]; then echo 'triad: error: --layers 4 is too deep' >&2; exit 2; fi\n"
                 "mkdir -p $out\n"
                 "awk -v lr=$lr -v l=$layers 'BEGIN { x = log(lr) / log(10) + 2.5; "
                 "printf "
                 "\"{\\\"step\\\":1,\\\"val_loss\\\":%.6f}\\n{\\\"step\\\":1,\\\"wall_s\\\":%.6f,\\\"peak_"
                 "rss_mib\\\":%d,"
                 "\\\"energy_source\\\":\\\"estimate\\\"}\\n\", x * x + 1 / l, 1 + lr * 100 * l, 100 * l }' "
                 "> $out/metrics.jsonl\n");
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

const char* kFakeSpace =
    "objectives = [\"val_loss\", \"wall_s\"]\n"
    "reference = [5.0, 10.0]\n"
    "constraints = [\"peak_rss_mib <= 250\"]\n"
    "[search]\n"
    "lr = { min = 1e-4, max = 1e-1, log = true }\n"
    "layers = { min = 1, max = 4 }\n";

size_t count_lines(const std::string& path) {
  if (!path_exists(path)) return 0;
  const std::string text = read_file(path);
  return std::count(text.begin(), text.end(), '\n');
}

TEST(Search, Nsga2JournalFrontAndPenalties) {
  TempDir dir;
  write_text(dir / "space.toml", kFakeSpace);
  SearchOptions o{.space_path = dir / "space.toml",
                  .out_dir = dir / "search",
                  .trials = 16,
                  .population = 8,
                  .seed = 3,
                  .binary = fake_trainer(dir)};
  const SearchResult r = run_search(o);
  ASSERT_EQ(r.trials.size(), 16u);
  EXPECT_EQ(r.trials_run, 16);
  EXPECT_EQ(count_lines(dir / "launches"), 16u);
  const SearchSpace space = SearchSpace::load(o.space_path);
  std::vector<std::vector<double>> feasible_points;
  std::vector<size_t> feasible;
  size_t failed = 0, infeasible = 0;
  for (size_t i = 0; i < r.trials.size(); ++i) {
    const TrialRecord& t = r.trials[i];
    EXPECT_EQ(t.trial, static_cast<int>(i));
    if (t.status == "failed") {  // --layers 4: recorded, penalised, not fatal
      ++failed;
      EXPECT_THAT(t.error, HasSubstr("--layers 4 is too deep (exit code 2)"));
      EXPECT_EQ(t.fitness, (std::vector<double>{1005, 1010}));
    } else if (!t.feasible) {  // --layers 3: 300 MiB > 250
      ++infeasible;
      EXPECT_EQ(t.metrics.at("peak_rss_mib"), 300);
      EXPECT_DOUBLE_EQ(t.fitness[0], 5 + 1 + 50.0 / 250);
    } else {
      feasible.push_back(i);
      feasible_points.push_back({t.metrics.at("val_loss"), t.metrics.at("wall_s")});
      EXPECT_EQ(t.fitness, feasible_points.back());
    }
    // The hypervolume after each trial, from the feasible trials so far.
    std::vector<std::vector<double>> so_far(feasible_points);
    EXPECT_NEAR(t.hypervolume, brute_hypervolume(so_far, space.reference), 1e-9) << i;
  }
  EXPECT_GT(failed + infeasible, 0u);
  std::vector<size_t> expected_front;
  for (size_t i : brute_front(feasible_points)) expected_front.push_back(feasible[i]);
  EXPECT_EQ(r.front, expected_front);
  EXPECT_NEAR(r.hypervolume, brute_hypervolume(feasible_points, space.reference), 1e-9);
  const std::string md = read_file(dir / "search/front.md");
  for (size_t i : r.front) EXPECT_THAT(md, HasSubstr(r.trials[i].command));
  EXPECT_THAT(md, HasSubstr(fmt::format("16 trials ({} failed, {} infeasible)", failed, infeasible)));
  EXPECT_THAT(md, ::testing::Not(HasSubstr("estimate")));  // no energy objective: nothing to label
  EXPECT_THAT(read_file(dir / "search/front.svg"), HasSubstr("<svg xmlns"));
  // The initial population, then generations of 8 (fewer new trials when NSGA-II proposes a trial again).
  std::vector<nlohmann::json> generations;
  for (const auto& j : testing::read_jsonl(dir / "search/journal.jsonl"))
    if (j["kind"] == "generation") generations.push_back(j);
  ASSERT_GE(generations.size(), 1u);
  EXPECT_EQ(generations.back()["trials"], 16);
  EXPECT_DOUBLE_EQ(generations.back()["hypervolume"].get<double>(), r.hypervolume);
}

TEST(Search, KilledSearchResumesWithoutRerunningFinishedTrials) {
  TempDir dir;
  write_text(dir / "space.toml", kFakeSpace);
  SearchOptions o{.space_path = dir / "space.toml",
                  .out_dir = dir / "whole",
                  .trials = 16,
                  .population = 8,
                  .seed = 5,
                  .binary = fake_trainer(dir)};
  const SearchResult whole = run_search(o);

  // The same search killed while running its seventh trial: six trials in the journal, a torn line.
  o.out_dir = dir / "killed";
  o.trials = 6;
  run_search(o);
  std::ofstream(dir / "killed/journal.jsonl", std::ios::app) << "{\"kind\": \"trial\", \"trial\": 6, \"x\"";
  fs::remove(dir / "launches");
  o.trials = 16;
  const SearchResult resumed = run_search(o);
  EXPECT_EQ(resumed.trials_run, 10);
  EXPECT_EQ(count_lines(dir / "launches"), 10u);
  ASSERT_EQ(resumed.trials.size(), whole.trials.size());
  for (size_t i = 0; i < whole.trials.size(); ++i)
    EXPECT_EQ(resumed.trials[i].args, whole.trials[i].args) << i;
  EXPECT_EQ(resumed.front, whole.front);
  EXPECT_DOUBLE_EQ(resumed.hypervolume, whole.hypervolume);

  // Run again when finished: nothing runs.
  fs::remove(dir / "launches");
  EXPECT_EQ(run_search(o).trials_run, 0);
  EXPECT_EQ(count_lines(dir / "launches"), 0u);
  // Another seed is another search: refused, naming the journal.
  o.seed = 6;
  EXPECT_THROW(
      {
        try {
          run_search(o);
        } catch (const Error& e) {
          EXPECT_THAT(e.what(), HasSubstr("journal.jsonl: this search was run with seed = 5"));
          throw;
        }
      },
      Error);
}

TEST(Search, TinyRealSearchRecordsAFailureAndItsFrontReproduces) {
  TempDir dir;
  // heads 3 does not divide d-model 32: that trial fails, is recorded, and the search goes on.
  write_text(dir / "space.toml",
             "objectives = [\"val_loss\", \"energy_j\"]\nreference = [10.0, 1e6]\n[fixed]\n"
             "data = \"" +
                 testing::fixture_data() +
                 "\"\n"
                 "layers = 1\nd-model = 32\nseq-len = 16\nbatch = 4\nsteps = 3\neval-every = 3\n"
                 "eval-batches = 2\nthreads = 2\nsample-prompt = \"\"\nlog-every = 0\n"
                 "[search]\nheads = { choices = [2, 3] }\n");
  auto r = testing::run_triad("search -q " + dir / "space.toml" + " --out " + dir / "s" +
                              " --algorithm random --trials 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto result = nlohmann::json::parse(r.out);
  EXPECT_EQ(result["trials_run"], 2);
  ASSERT_EQ(result["front"].size(), 1u);
  std::vector<nlohmann::json> trials;
  for (const auto& j : testing::read_jsonl(dir / "s/journal.jsonl"))
    if (j["kind"] == "trial") trials.push_back(j);
  ASSERT_EQ(trials.size(), 2u);
  const nlohmann::json& ok = trials[0]["status"] == "ok" ? trials[0] : trials[1];
  const nlohmann::json& bad = trials[0]["status"] == "ok" ? trials[1] : trials[0];
  EXPECT_EQ(bad["status"], "failed");
  EXPECT_THAT(bad["error"].get<std::string>(), HasSubstr("--d-model 32 is not divisible by --heads 3"));
  EXPECT_EQ(ok["energy_source"], "estimate");
  EXPECT_THAT(read_file(dir / "s/front.md"), HasSubstr("(energy: estimate)"));

  // The front's command, rerun into another directory, gives the same validation loss.
  std::string command = ok["command"];
  const std::string out = dir / fmt::format("s/trials/{:04d}", ok["trial"].get<int>());
  command.replace(command.find(out), out.size(), dir / "again");
  command.replace(0, std::string("triad ").size(), std::string(TRIAD_BINARY) + " -q ");
  auto again = testing::run_command(command);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  std::string error;
  const auto metrics = read_run_metrics(dir / "again", {"val_loss"}, &error);
  ASSERT_TRUE(metrics) << error;
  EXPECT_NEAR(metrics->at("val_loss"), ok["metrics"]["val_loss"].get<double>(), 1e-6);
}

}  // namespace
}  // namespace triad::search
