// --layout auto and --layout-trials: the planner's shortlist (one layout per data x tensor x pipeline shape,
// within the trial margin of the fastest prediction), trials that leave the run as if its layout had been
// given, and what is refused.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>
#include <tuple>

#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/train/layout_choice.h"
#include "triad/train/memory_check.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::RefusedWith;
using testing::run_triad;
using testing::run_triad_mpi;
using testing::TempDir;

LayoutCandidate candidate(int data, int tensor, int pipeline, double seconds, int micro_batches = 1,
                          std::vector<int> stage_first = {0, 2}) {
  LayoutCandidate c;
  c.planned.choice.layout = {.data = data, .tensor = tensor, .pipeline = pipeline};
  c.planned.choice.micro_batches = micro_batches;
  c.planned.choice.stage_first = std::move(stage_first);
  c.planned.time.compute = seconds;
  return c;
}

// (data, tensor, pipeline, micro-batches) of each
std::vector<std::tuple<int, int, int, int>> keys(const std::vector<LayoutCandidate>& picked) {
  std::vector<std::tuple<int, int, int, int>> out;
  for (const LayoutCandidate& c : picked) {
    const parallel::LayoutChoice& l = c.planned.choice;
    out.push_back({l.layout.data, l.layout.tensor, l.layout.pipeline, l.micro_batches});
  }
  return out;
}

TEST(LayoutAuto, TrialsTakeTheFastestPredictedOfEachShapeAndPipelineWithinTheMargin) {
  using K = std::tuple<int, int, int, int>;
  const std::vector<LayoutCandidate> ranked = {candidate(4, 1, 1, 1.00),
                                               candidate(4, 1, 1, 1.01, 2),
                                               candidate(2, 2, 1, 1.05),
                                               candidate(4, 1, 1, 1.10),
                                               candidate(1, 2, 2, 1.20, 2, {0, 1, 2}),
                                               candidate(1, 2, 2, 1.21, 2),
                                               candidate(1, 2, 2, 1.22, 8),
                                               candidate(1, 2, 2, 1.23, 2, {0, 1, 2}),
                                               candidate(2, 2, 1, 1.25, 4),
                                               candidate(1, 1, 4, 1.31, 8),
                                               candidate(1, 4, 1, 1.40)};
  EXPECT_EQ(keys(trial_candidates(ranked, 20)),
            (std::vector<K>{{4, 1, 1, 1}, {2, 2, 1, 1}, {1, 2, 2, 2}, {1, 2, 2, 2}, {1, 2, 2, 8}}))
      << "one per shape without stages; per micro-batches and split with them; none predicted beyond "
      << kTrialMargin << "x the fastest";
  EXPECT_EQ(trial_candidates(ranked, 20)[3].planned.choice.stage_first, (std::vector<int>{0, 2}));
  EXPECT_EQ(keys(trial_candidates(ranked, 2)), (std::vector<K>{{4, 1, 1, 1}, {2, 2, 1, 1}}));
  EXPECT_EQ(keys(trial_candidates(ranked, 0)), std::vector<K>{});
  EXPECT_EQ(trial_candidates(ranked, 8)[1].predicted_ms(), 1050) << "each one's fastest predicted variant";
}

// Up to four candidates are timed for 2 steps each, the 3 fastest for 3 more, and the run trains the fastest
// finalist, exactly as that layout's flags given by hand would: the same losses bit for bit, and nothing of
// the trials in the run directory.
TEST(LayoutAuto, TrialsTrainTheFastestMeasuredAsIfItsLayoutWereGiven) {
  TempDir dir;
  const std::string run = dir / "run", by_hand = dir / "by_hand";
  const std::string flags = "--steps 4 --eval-every 0 --threads 1 --ckpt-every 0 --remat full";
  auto r = run_triad_mpi(4, testing::train_args(run, flags + " --layout auto --layout-trials 4"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json chosen = read_json_file(run + "/run.json")["layout_auto"];
  ASSERT_TRUE(chosen.contains("trials")) << chosen.dump(1);
  EXPECT_THAT(chosen["speeds"].get<std::string>(), HasSubstr("the model's step alone"))
      << "without a topology, the model is timed alone and at once before planning";
  const nlohmann::json& trials = chosen["trials"];
  ASSERT_GE(trials.size(), 2u) << "dp4 and dp2 x tp2 are predicted within the margin for this model";
  ASSERT_LE(trials.size(), 4u);
  const size_t finalists = std::min<size_t>(3, trials.size());
  std::set<std::string> seen;
  double fastest_finalist = 1e300, slowest_finalist = 0;
  for (size_t i = 0; i < trials.size(); ++i) {
    const nlohmann::json& t = trials[i];
    EXPECT_TRUE(seen.insert(t["layout"].get<std::string>()).second) << "timed twice: " << t.dump();
    const std::vector<double> steps = t["trial_ms"];
    const bool finalist = i < finalists;
    ASSERT_EQ(steps.size(), finalist ? 5u : 2u) << t.dump();
    for (double ms : steps) EXPECT_GT(ms, 0);
    std::vector<double> sorted = steps;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.size() % 2 ? sorted[sorted.size() / 2] : (sorted[0] + sorted[1]) / 2;
    EXPECT_DOUBLE_EQ(t["measured_ms"].get<double>(), median);
    if (finalist) {
      fastest_finalist = std::min(fastest_finalist, median);
      slowest_finalist = std::max(slowest_finalist, (steps[0] + steps[1]) / 2);
    } else {
      EXPECT_GE(median, slowest_finalist) << "a finalist was slower in the first round";
    }
  }
  EXPECT_EQ(chosen["measured_ms"].get<double>(), fastest_finalist) << chosen.dump(1);
  EXPECT_GT(chosen["trial_seconds"].get<double>(), 0);

  r = run_triad_mpi(4, testing::train_args(by_hand, flags + " " + chosen["train_flags"].get<std::string>()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::losses(run), testing::losses(by_hand)) << "the trials changed the run";
  std::set<std::string> files, hand_files;
  for (const auto& e : fs::recursive_directory_iterator(run)) files.insert(fs::relative(e.path(), run));
  for (const auto& e : fs::recursive_directory_iterator(by_hand))
    hand_files.insert(fs::relative(e.path(), by_hand));
  EXPECT_EQ(files, hand_files) << "a trial wrote into the run directory";
}

TEST(LayoutAuto, PricesRanksThatShareCoresWithoutATopology) {
  if (std::thread::hardware_concurrency() >= 4) GTEST_SKIP() << "needs fewer than 4 CPUs for 4 ranks";
  TempDir dir;
  const std::string run = dir / "run";
  auto r = run_triad_mpi(4, testing::train_args(run, "--steps 1 --eval-every 0 --threads 1 --layout auto"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(read_json_file(run + "/run.json")["layout_auto"]["speeds"].get<std::string>(),
              HasSubstr("they take turns"))
      << "the planner gave each rank a core of its own";
}

TEST(LayoutAuto, IsRefusedWhereItCannotApply) {
  TempDir dir;
  EXPECT_THAT(run_triad(testing::train_args(dir / "a", "--layout-trials 2")),
              RefusedWith("--layout-trials 2 applies with --layout auto"));
  EXPECT_THAT(run_triad(testing::train_args(dir / "b",
                                            "--layout auto --layout-trials 2 --dp-noise 1 --dp-clip 1 "
                                            "--dp-delta 1e-5 --grad-accum 1")),
              RefusedWith("would see the private data outside the privacy ledger"));
  EXPECT_THAT(run_triad(testing::train_args(dir / "c", "--layout auto --layout-trials -1")),
              RefusedWith("--layout-trials"));
  EXPECT_FALSE(fs::exists(dir / "a")) << "refused before creating the run";
  const std::string run = dir / "run";
  ASSERT_EQ(
      run_triad(testing::train_args(run, "--steps 1 --eval-every 0 --grad-compression topk:0.1")).exit_code,
      0);
  EXPECT_THAT(run_triad("train --resume " + run + " --steps 2 --layout auto"),
              RefusedWith("keeps this run's --grad-accum 1, --zero 0 and --grad-compression topk:0.1"));
}

// --memory-limit bounds what --layout auto may choose: with a limit just below the unconstrained choice's
// need (by fit_training_memory's estimate, the one the trainer applies), it chooses a layout that fits the
// limit as planned; below every layout's need, it refuses naming the limit.
TEST(LayoutAuto, ChoosesWithinTheMemoryLimit) {
  TempDir dir;
  const std::string flags = "--steps 1 --eval-every 0 --threads 1 --seq-len 64 --batch 8 --layout auto";
  auto options_of = [](const std::string& run) {
    return TrainOptions::from_json(read_json_file(run + "/run.json")["options"], "run.json");
  };
  auto need = [](const TrainOptions& o) { return training_memory(o, 2).total() + kProcessBytes; };
  auto free_run = run_triad_mpi(2, testing::train_args(dir / "free", flags));
  ASSERT_EQ(free_run.exit_code, 0) << free_run.err;
  const double unconstrained = need(options_of(dir / "free"));
  // Precondition: a layout needs less (2 micro-batches of 2 sequences hold half the activations).
  TrainOptions smaller = options_of(dir / "free");
  smaller.tensor_parallel = smaller.pipeline_parallel = 1, smaller.comm.zero = 0, smaller.grad_accum = 2;
  ASSERT_LT(need(smaller), unconstrained);

  const double limit = std::floor(unconstrained) - 1;
  auto r = run_triad_mpi(
      2, testing::train_args(dir / "limited", fmt::format("{} --memory-limit {:.0f}", flags, limit)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const TrainOptions chosen = options_of(dir / "limited");
  EXPECT_LE(need(chosen), limit);
  EXPECT_EQ(chosen.optimizer_states, "fp32") << "the limit was met by changing the layout's options";
  EXPECT_EQ(chosen.remat.budget, "") << "the limit was met by changing the layout's options";

  EXPECT_THAT(run_triad_mpi(2, testing::train_args(dir / "tiny", flags + " --memory-limit 1MiB")),
              RefusedWith("no layout of 2 ranks fits --memory-limit"));
}

// A run resumed with --layout auto continues at the planner's choice among the layouts that keep its
// micro-batches, ZeRO-1 and codec, and from where it stopped: its losses are those of a resume at that
// layout given by hand.
TEST(LayoutAuto, AResumedRunTakesTheFastestLayoutThatKeepsItsOptimizerState) {
  TempDir dir;
  const std::string run = dir / "run";
  const std::string flags = "--steps 2 --eval-every 0 --threads 1 --ckpt-every 2 --grad-accum 2 --zero 1";
  ASSERT_EQ(run_triad_mpi(2, testing::train_args(run, flags)).exit_code, 0);
  fs::copy(run, dir / "by_hand", fs::copy_options::recursive);
  auto r = run_triad_mpi(4, "train --resume " + run + " --steps 4 --threads 1 --layout auto");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--layout auto chose"));
  const nlohmann::json options = read_json_file(run + "/checkpoints/step_000004/manifest.json")["options"];
  EXPECT_EQ(options["grad_accum"], 2);
  EXPECT_EQ(options["zero"], 1);
  EXPECT_EQ(options["grad_compression"], "none");
  const int tp = options["tensor_parallel"], pp = options["pipeline_parallel"];
  EXPECT_EQ(4 % (tp * pp), 0);
  std::string layout = fmt::format("--tensor-parallel {} --pipeline-parallel {}", tp, pp);
  if (pp > 1) {
    layout += fmt::format(" --pipeline-split {} --pipeline-schedule {}",
                          options["pipeline_split"].get<std::string>(),
                          options["pipeline_schedule"].get<std::string>());
  }
  auto again = run_triad_mpi(4, "train --resume " + dir / "by_hand" + " --steps 4 --threads 1 " + layout);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(testing::losses(run), testing::losses(dir / "by_hand"));
}

}  // namespace
}  // namespace triad
