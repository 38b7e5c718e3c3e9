// --layout auto and --layout-trials: the planner's shortlist (one layout per data x tensor x pipeline shape,
// within the trial margin of the fastest prediction), trials that leave the run as if its layout had been
// given, and what is refused.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>
#include <tuple>

#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/train/layout_choice.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::RefusedWith;
using testing::run_triad;
using testing::run_triad_mpi;
using testing::TempDir;

LayoutCandidate candidate(int data, int tensor, int pipeline, double seconds) {
  LayoutCandidate c;
  c.planned.choice.layout = {.data = data, .tensor = tensor, .pipeline = pipeline};
  c.planned.choice.stage_first = {0, 2};
  c.planned.time.compute = seconds;
  return c;
}

std::vector<std::tuple<int, int, int>> shapes(const std::vector<LayoutCandidate>& picked) {
  std::vector<std::tuple<int, int, int>> out;
  for (const LayoutCandidate& c : picked)
    out.push_back(
        {c.planned.choice.layout.data, c.planned.choice.layout.tensor, c.planned.choice.layout.pipeline});
  return out;
}

TEST(LayoutAuto, TrialsTakeTheFastestPredictedOfEachShapeWithinTheMargin) {
  using T = std::tuple<int, int, int>;
  const std::vector<LayoutCandidate> ranked = {
      candidate(4, 1, 1, 1.00), candidate(4, 1, 1, 1.01), candidate(2, 2, 1, 1.05), candidate(4, 1, 1, 1.10),
      candidate(1, 2, 2, 1.20), candidate(2, 2, 1, 1.25), candidate(1, 1, 4, 1.31), candidate(1, 4, 1, 1.40)};
  EXPECT_EQ(shapes(trial_candidates(ranked, 8)), (std::vector<T>{{4, 1, 1}, {2, 2, 1}, {1, 2, 2}}))
      << "one per shape, none predicted beyond " << kTrialMargin << "x the fastest";
  EXPECT_EQ(shapes(trial_candidates(ranked, 2)), (std::vector<T>{{4, 1, 1}, {2, 2, 1}}));
  EXPECT_EQ(shapes(trial_candidates(ranked, 0)), std::vector<T>{});
  EXPECT_EQ(trial_candidates(ranked, 8)[1].predicted_ms(), 1050) << "each shape's fastest variant";
}

// The trials time each shape and the run trains the fastest measured, exactly as that layout's flags
// given by hand would: same losses bit for bit, nothing of the trials left in the run directory.
TEST(LayoutAuto, TrialsTrainTheFastestMeasuredAsIfItsLayoutWereGiven) {
  TempDir dir;
  const std::string run = dir / "run", by_hand = dir / "by_hand";
  const std::string flags = "--steps 4 --eval-every 0 --threads 1 --ckpt-every 0 --remat full";
  auto r = run_triad_mpi(2, testing::train_args(run, flags + " --layout auto --layout-trials 3"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json chosen = read_json_file(run + "/run.json")["layout_auto"];
  ASSERT_TRUE(chosen.contains("trials")) << chosen.dump(1);
  const nlohmann::json& trials = chosen["trials"];
  ASSERT_GE(trials.size(), 2u) << "dp2, tp2 and pp2 are predicted within the margin for this model";
  ASSERT_LE(trials.size(), 3u);
  std::set<std::string> seen;
  double fastest = 1e300;
  for (const nlohmann::json& t : trials) {
    EXPECT_GT(t["measured_ms"].get<double>(), 0) << t.dump();
    EXPECT_TRUE(seen.insert(t["layout"].get<std::string>().substr(0, 11)).second) << "one per shape";
    fastest = std::min(fastest, t["measured_ms"].get<double>());
  }
  EXPECT_EQ(chosen["measured_ms"].get<double>(), fastest) << chosen.dump(1);
  EXPECT_GT(chosen["trial_seconds"].get<double>(), 0);

  r = run_triad_mpi(2, testing::train_args(by_hand, flags + " " + chosen["train_flags"].get<std::string>()));
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

TEST(LayoutAuto, TrialsAreRefusedWhereTheyCannotApply) {
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
}

}  // namespace
}  // namespace triad
