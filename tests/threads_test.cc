// --threads: one bound for every command that takes it (core/parallel.h), refused as a usage error before
// any work starts. Above it, OpenMP failed to start the threads: a segfault or a bare libgomp message.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/parallel.h"

namespace triad {
namespace {

using testing::fixture;
using testing::RefusedWith;
using testing::run_triad;
using testing::TempDir;

TEST(ThreadsFlag, TheBoundIsFixedButNeverBelowTheHardware) {
  EXPECT_GE(max_threads(), 1024);
  EXPECT_GE(max_threads(), static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_NO_THROW(check_threads(1));
  EXPECT_NO_THROW(check_threads(max_threads()));
  EXPECT_THROW(check_threads(max_threads() + 1), Error);
  EXPECT_THROW(check_threads(0), Error);
}

TEST(ThreadsFlag, EveryCommandRefusesACountAboveTheBoundBeforeStarting) {
  TempDir dir;
  const std::string run = dir / "run";
  auto trained = run_triad(testing::tiny_train_args(run, "--steps 2 --eval-every 0"));
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  // Each command line is one that runs, but for the --threads at its end (the last of a flag wins).
  const std::string commands[] = {
      "prepare -q --input " + fixture("fixture/brown_sample.jsonl") + " --out " + (dir / "data") +
          " --vocab-size 400 --blocklist off",
      testing::tiny_train_args(dir / "run2", "--steps 2 --eval-every 0"),
      "eval --checkpoint " + run + " --batches 1",
      "generate --checkpoint " + run + " --prompt The --max-tokens 2",
      "probe -q --out " + (dir / "topology.json"),
  };
  const std::string says = "--threads 100000 is more than " + std::to_string(max_threads());
  for (const std::string& command : commands) {
    EXPECT_THAT(run_triad(command + " --threads 100000"), RefusedWith(says)) << command;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "data"));
  EXPECT_FALSE(std::filesystem::exists(dir / "run2"));
  EXPECT_FALSE(std::filesystem::exists(dir / "topology.json"));
}

}  // namespace
}  // namespace triad
