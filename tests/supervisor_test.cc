// `triad launch` (train/supervisor.h) and preemption (train/stop_signal.h), end to end under
// `mpirun -np 2`: a rank killed at a random step, a corrupt newest checkpoint, a SIGTERM, a shrinking job
// all finish with the weights of an uninterrupted run, bit for bit; usage errors and policy halts are not
// retried. Ranks are killed and signalled at chosen steps by TRIAD_TEST_SIGNAL_AT (stop_signal.h).
// scripts/chaos runs the random kill many more times.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <random>
#include <thread>

#include "train_test_util.h"
#include "triad/core/error.h"
#include "triad/core/exit_code.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"
#include "triad/train/relaunch.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using testing::CommandResult;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::run_command;
using testing::run_triad;
using testing::TempDir;

constexpr int kSteps = 8;
const std::string kRun = "--steps 8 --ckpt-every 3 --eval-every 0 --threads 1";

std::string mpirun(int ranks) {
  setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  return fmt::format("{} -np {} --oversubscribe {}", TRIAD_MPIEXEC, ranks, TRIAD_BINARY);
}

// `triad launch` (no back-off) over `job`, with TRIAD_TEST_SIGNAL_AT=`signal_at` when not empty.
CommandResult launch(const std::string& flags, const std::string& job, const std::string& signal_at = "") {
  const std::string env = signal_at.empty() ? "" : "TRIAD_TEST_SIGNAL_AT=" + signal_at + " ";
  return run_command(env + TRIAD_BINARY + " launch --backoff 0 " + flags + " -- " + job);
}

// The SHA-256 of the final checkpoint's weights and optimizer moments.
std::string final_state(const std::string& run) {
  const std::string dir = run + fmt::format("/checkpoints/step_{:06}", kSteps);
  return sha256_file_hex(dir + "/model.safetensors") + " " + sha256_file_hex(dir + "/optimizer.safetensors");
}

// The uninterrupted run on 2 ranks, trained once per test process.
const std::string& reference_state() {
  static TempDir dir;
  static const std::string state = [] {
    const std::string run = dir / "reference";
    auto r = run_command(mpirun(2) + " " + testing::train_args(run, kRun));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return final_state(run);
  }();
  return state;
}

std::vector<nlohmann::json> entries_of_kind(const std::string& run, const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (const auto& e : testing::read_jsonl(run + "/audit/log.jsonl")) {
    if (e["kind"] == kind) out.push_back(e["payload"]);
  }
  return out;
}

TEST(Supervisor, AKilledRankIsRelaunchedAndEndsWithTheWeightsOfAnUninterruptedRun) {
  // Two of scripts/chaos's runs; seed 1 kills before the first checkpoint (the run starts over), seed 2
  // after it (the run resumes).
  for (unsigned seed : {1u, 2u}) {
    std::mt19937 pick(seed);
    const int rank = static_cast<int>(pick() % 2), step = 2 + static_cast<int>(pick() % (kSteps - 2));
    SCOPED_TRACE(fmt::format("seed {}: kill -9 rank {} before step {}", seed, rank, step));
    TempDir dir;
    const std::string run = dir / "run";
    auto r = launch("--max-restarts 2", mpirun(2) + " " + testing::train_args(run, kRun),
                    fmt::format("{}:{}:KILL:1:{}", rank, step, dir / "fired"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("launch: attempt 2: "));
    EXPECT_THAT(r.err, Not(HasSubstr("launch: attempt 3: ")));
    EXPECT_EQ(final_state(run), reference_state());
    auto restarts = entries_of_kind(run, "restart");
    ASSERT_EQ(restarts.size(), 1u);
    EXPECT_EQ(restarts[0]["reason"], "failed");
    // mpirun's 137 for the rank it lost, or 1 from the survivor when it failed first
    EXPECT_TRUE(restarts[0]["exit_code"] == 128 + SIGKILL || restarts[0]["exit_code"] == 1) << restarts[0];
    EXPECT_EQ(restarts[0].contains("resume_from_step"), step > 3) << restarts[0];
    testing::expect_audit_verified(run);
  }
}

TEST(Supervisor, ACorruptNewestCheckpointIsSkippedAndTheRunStillEndsBitIdentical) {
  TempDir dir;
  const std::string run = dir / "run";
  // Killed before step 8: checkpoints at steps 3 and 6.
  auto killed = run_command("TRIAD_TEST_SIGNAL_AT=0:8:KILL:1:" + dir / "fired " + mpirun(2) + " " +
                            testing::train_args(run, kRun));
  ASSERT_NE(killed.exit_code, 0);
  const std::string newest = run + "/checkpoints/step_000006/model.safetensors";
  std::string bytes = read_file(newest);
  bytes[bytes.size() - 3] ^= 0x40;
  testing::write_text(newest, bytes);

  auto r = launch("", mpirun(2) + " train -q --resume " + run + " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("skipped " + run + "/checkpoints/step_000006"));
  EXPECT_EQ(final_state(run), reference_state());
  testing::expect_audit_verified(run);
}

TEST(Supervisor, ASigtermedRankStopsEveryRankWithACheckpointAndTheRunResumesBitIdentical) {
  TempDir dir;
  const std::string run = dir / "run";
  // --max-restarts 0: a preemption that wrote a newer checkpoint is not a failure.
  auto r = launch("--max-restarts 0", mpirun(2) + " " + testing::train_args(run, kRun),
                  "1:5:TERM:1:" + dir / "fired");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("exit code 75: preempted"));
  EXPECT_EQ(final_state(run), reference_state());
  auto ends = entries_of_kind(run, "run_end");
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0]["status"], "preempted");
  EXPECT_EQ(ends[0]["step"], 5) << "rank 1 had the signal before step 5: every rank stops after it";
  EXPECT_EQ(ends[1]["status"], "completed");
  auto restarts = entries_of_kind(run, "restart");
  ASSERT_EQ(restarts.size(), 1u);
  EXPECT_EQ(restarts[0]["reason"], "preempted");
  EXPECT_EQ(restarts[0]["counted"], false);
  EXPECT_EQ(restarts[0]["resume_from_step"], 5);
  testing::expect_audit_verified(run);
}

// SIGTERM to the supervisor: the ranks hear of it (as SIGUSR1 through mpirun), stop after one step with a
// checkpoint, and the supervisor exits with 75 without relaunching.
TEST(Supervisor, ASigtermToTheSupervisorStopsTheJobWithACheckpoint) {
  TempDir dir;
  const std::string run = dir / "run", pid_file = dir / "pid";
  CommandResult r;
  std::thread job([&] {
    r = run_command("{ (exec " + std::string(TRIAD_BINARY) + " launch -- " + mpirun(2) + " " +
                    testing::train_args(run, "--steps 100000 --ckpt-every 0 --eval-every 0 --threads 1") +
                    ") & echo $! >" + pid_file + "; wait $!; }");
  });
  // Once training is under way (a step record), the run cannot end before the signal arrives.
  while (!fs::exists(run + "/metrics.jsonl") || fs::file_size(run + "/metrics.jsonl") == 0 ||
         !fs::exists(pid_file) || fs::file_size(pid_file) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(::kill(std::stoi(read_file(pid_file)), SIGTERM), 0);
  job.join();
  EXPECT_EQ(r.exit_code, kExitPreempted) << r.err;
  EXPECT_THAT(r.err, HasSubstr("launch: stopped by SIGTERM after attempt 1"));
  auto ends = entries_of_kind(run, "run_end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["status"], "preempted");
  const int step = ends[0]["step"];
  EXPECT_TRUE(fs::exists(run + fmt::format("/checkpoints/step_{:06}/model.safetensors", step)));
  EXPECT_TRUE(entries_of_kind(run, "restart").empty());
  testing::expect_audit_verified(run);
}

TEST(Supervisor, ASecondSignalEndsTrainingAtOnce) {
  TempDir dir;
  const std::string run = dir / "run";
  auto r = run_command("TRIAD_TEST_SIGNAL_AT=0:2:TERM:2:" + dir / "fired " + TRIAD_BINARY + " " +
                       testing::train_args(run, "--steps 4 --ckpt-every 0 --eval-every 0"));
  // 143 from the shell, or -1: the shell exec'd triad and the status is the signal itself
  EXPECT_TRUE(r.exit_code == 128 + SIGTERM || r.exit_code == -1) << r.err;
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_000002"));
  EXPECT_THAT(r.err, Not(HasSubstr("preempted")));
}

TEST(Supervisor, AUsageErrorIsNotRetried) {
  TempDir dir;
  auto r = launch("--max-restarts 3", std::string(TRIAD_BINARY) + " " +
                                          testing::train_args(dir / "run", "--steps 2 --no-such-flag"));
  EXPECT_EQ(r.exit_code, kExitUsage) << r.err;
  EXPECT_THAT(r.err, HasSubstr("exit code 2: a usage error"));
  EXPECT_THAT(r.err, HasSubstr("not retried"));
  EXPECT_THAT(r.err, Not(HasSubstr("attempt 2")));
}

TEST(Supervisor, APolicyHaltIsNotRetried) {
  TempDir dir;
  const std::string run = dir / "run", policy = dir / "policy.toml";
  testing::write_text(policy, "[[rule]]\nname = \"stop-early\"\nwhen = \"step >= 2\"\naction = \"halt\"\n");
  auto r =
      launch("--max-restarts 3", std::string(TRIAD_BINARY) + " " +
                                     testing::train_args(run, "--steps 4 --eval-every 0 --policy " + policy));
  EXPECT_EQ(r.exit_code, kExitHalted) << r.err;
  EXPECT_THAT(r.err, HasSubstr("halted at step 2"));
  EXPECT_THAT(r.err, Not(HasSubstr("attempt 2")));
  EXPECT_TRUE(entries_of_kind(run, "restart").empty());
}

// Four ranks cannot start on a host of two slots: the next count that the batch of 4 divides over is 2
// (3 is passed over), and two ranks train the reference's model.
TEST(Supervisor, AJobThatCannotStartIsRelaunchedOnFewerRanks) {
  TempDir dir;
  const std::string run = dir / "run";
  const std::string job = fmt::format("{} --host localhost:2 -np 4 {} {}", TRIAD_MPIEXEC, TRIAD_BINARY,
                                      testing::train_args(run, kRun));
  auto r = launch("--min-ranks 2", job);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("not on 3 ranks: --batch 4 must be a multiple of 3"));
  EXPECT_THAT(r.err, HasSubstr("relaunching on 2 (--min-ranks 2)"));
  EXPECT_EQ(final_state(run), reference_state());
  EXPECT_EQ(nlohmann::json::parse(read_file(run + "/run.json"))["ranks"], 2);
}

TEST(Relaunch, ContinuesTheRunFromItsCheckpointsOnAnyRankCount) {
  const TrainCommand c = parse_train_command({"mpirun", "-np", "4", "--oversubscribe", "/opt/triad", "train",
                                              "--out=runs/a", "--force", "--steps", "9"});
  EXPECT_EQ(c.run_dir, "runs/a");
  EXPECT_EQ(c.ranks, 4);
  EXPECT_EQ(shell_line(c.resume_words(2)),
            "mpirun -np 2 --oversubscribe /opt/triad train --resume runs/a --steps 9");
  EXPECT_EQ(shell_line(c.start_over_words(4)), shell_line(c.words));
  const TrainCommand s = parse_train_command({"srun", "--ntasks=8", "triad", "train", "--resume", "r",
                                              "--checkpoint", "step_3", "--sample-prompt", ""});
  EXPECT_EQ(s.ranks, 8);
  EXPECT_EQ(shell_line(s.resume_words(6)), "srun --ntasks=6 triad train --resume r --sample-prompt ''");
  EXPECT_THROW(parse_train_command({"mpirun", "-np", "2", "python", "train.py"}), Error);
  EXPECT_THROW(parse_train_command({"triad", "train", "--steps", "3"}), Error);
}

TEST(Relaunch, RetriesFailuresAndPreemptionsOnly) {
  auto exited = [](int code) { return classify_wait_status(code << 8).end; };
  EXPECT_EQ(exited(0), AttemptEnd::kCompleted);
  EXPECT_EQ(exited(1), AttemptEnd::kFailed);
  EXPECT_EQ(exited(137), AttemptEnd::kFailed);
  EXPECT_EQ(exited(2), AttemptEnd::kUsage);
  EXPECT_EQ(exited(3), AttemptEnd::kHalted);
  EXPECT_EQ(exited(75), AttemptEnd::kPreempted);
  EXPECT_EQ(exited(127), AttemptEnd::kNotRun);
  EXPECT_EQ(classify_wait_status(SIGKILL).exit_code, 137);
  EXPECT_THAT(classify_wait_status(137 << 8).description, HasSubstr("killed by signal 9 (SIGKILL)"));
  for (AttemptEnd end :
       {AttemptEnd::kCompleted, AttemptEnd::kUsage, AttemptEnd::kHalted, AttemptEnd::kNotRun})
    EXPECT_FALSE(retryable(end));
}

}  // namespace
}  // namespace triad
