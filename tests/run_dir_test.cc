// What `train --out` may replace (train/checkpoint.h, create_run_dir): with --force a triad run holding
// nothing but what triad writes, its contents and not the directory; anything else is refused, naming what
// is in the way, and nothing is deleted. Before, --force deleted a thesis next to the run.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "train_test_util.h"
#include "triad/core/file_io.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using testing::RefusedWith;
using testing::run_triad;
using testing::TempDir;
using testing::train_args;

// `train` run inside `dir`, so that --out can be ".".
testing::CommandResult train_in(const std::string& dir, const std::string& flags) {
  return testing::run_command("cd " + dir + " && " + TRIAD_BINARY + " " + train_args(".", flags));
}

TEST(RunDir, ForceRefusesADirectoryThatIsNotARun) {
  TempDir dir;
  fs::create_directories(dir / "d");
  testing::write_text(dir / "d/thesis.tex", "x");
  for (const char* force : {"", "--force"}) {
    auto r = run_triad(train_args(dir / "d", std::string("--steps 2 --eval-every 0 ") + force));
    EXPECT_THAT(r, RefusedWith("is not a triad run")) << force;
    EXPECT_THAT(r, RefusedWith("it holds thesis.tex")) << force;
    EXPECT_EQ(read_file(dir / "d/thesis.tex"), "x");
  }
}

TEST(RunDir, ForceRefusesARunHoldingWhatTriadDidNotWrite) {
  TempDir dir;
  const std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 2 --eval-every 0")).exit_code, 0);
  testing::write_text(run + "/notes.txt", "mine");
  fs::create_directories(run + "/checkpoints/best");
  auto r = run_triad(train_args(run, "--steps 3 --eval-every 0 --force"));
  EXPECT_THAT(r, RefusedWith("also holds checkpoints/best/, notes.txt"));
  EXPECT_EQ(read_file(run + "/notes.txt"), "mine");
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_000002/manifest.json"));

  // Its own temporaries are triad's: replaced with the rest.
  fs::remove(run + "/notes.txt");
  fs::remove(run + "/checkpoints/best");
  testing::write_text(run + "/run.json.tmp-77", "");
  fs::create_directories(run + "/checkpoints/step_000009.tmp-5");
  r = run_triad(train_args(run, "--steps 3 --eval-every 0 --force"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(run + "/run.json.tmp-77"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_000009.tmp-5"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_000002"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_000003"));
}

// It said "run directory already exists"; with --force it replaced the file.
TEST(RunDir, AFileAsOutIsRefused) {
  TempDir dir;
  testing::write_text(dir / "file", "data");
  for (const char* force : {"", "--force"}) {
    EXPECT_THAT(run_triad(train_args(dir / "file", std::string("--steps 2 ") + force)),
                RefusedWith("is a file, not a run directory"))
        << force;
    EXPECT_EQ(read_file(dir / "file"), "data");
  }
}

// It deleted every file of the current directory, then failed with "cannot remove .".
TEST(RunDir, ForceInTheCurrentDirectoryReplacesARunButNotTheDirectory) {
  TempDir dir;
  testing::write_text(dir / "a.txt", "mine");
  EXPECT_THAT(train_in(dir.path(), "--steps 2 --eval-every 0 --force"), RefusedWith("it holds a.txt"));
  EXPECT_EQ(read_file(dir / "a.txt"), "mine");

  fs::remove(dir / "a.txt");
  ASSERT_EQ(train_in(dir.path(), "--steps 2 --eval-every 0").exit_code, 0);
  auto r = train_in(dir.path(), "--steps 3 --eval-every 0 --force");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(dir / "checkpoints/step_000002"));
  EXPECT_TRUE(fs::exists(dir / "checkpoints/step_000003/manifest.json"));
  EXPECT_EQ(testing::metrics(dir.path()).size(), 3u);
}

}  // namespace
}  // namespace triad
