// Which checkpoint `train --resume` continues from (train/resume_point.h): the newest valid one, with a
// warning for each it skips; invalid ones after it set aside so the run can write those steps again; crash
// debris removed; --checkpoint; and --steps below the run's step.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::RefusedWith;
using testing::run_triad;
using testing::TempDir;
using testing::train_args;

// A run of 6 steps with checkpoints at 2, 4 and 6 (and its audit log).
std::string six_steps(const TempDir& dir) {
  const std::string run = dir / "run";
  auto r = run_triad(train_args(run, "--steps 6 --ckpt-every 2 --eval-every 0"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return run;
}

std::string step_dir(const std::string& run, int step) {
  return run + fmt::format("/checkpoints/step_{:06}", step);
}

std::string weights_of(const std::string& run, int step) {
  return sha256_file_hex(step_dir(run, step) + "/model.safetensors");
}

void edit_manifest(const std::string& dir, const std::string& key, const nlohmann::json& value) {
  auto manifest = nlohmann::json::parse(read_file(dir + "/manifest.json"));
  manifest[nlohmann::json::json_pointer(key)] = value;
  testing::write_text(dir + "/manifest.json", manifest.dump(2) + "\n");
}

// "cursor": 320 -> 321 resumed on another data order without a word; the audit log has the manifest's hash.
TEST(Resume, AnEditedManifestIsSkippedForTheNewestValidCheckpoint) {
  TempDir dir;
  const std::string run = six_steps(dir);
  const std::string weights = weights_of(run, 6);
  const int cursor =
      nlohmann::json::parse(read_file(step_dir(run, 6) + "/manifest.json"))["sampler"]["cursor"];
  edit_manifest(step_dir(run, 6), "/sampler/cursor", cursor + 1);

  auto r = run_triad("train -q --resume " + run + " --steps 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("skipped " + step_dir(run, 6)));
  EXPECT_THAT(r.err, HasSubstr("the audit log recorded"));
  EXPECT_EQ(weights_of(run, 6), weights) << "steps 5 and 6 again, from step 4, exactly as before";
  EXPECT_TRUE(fs::exists(run + "/checkpoints/rejected/step_000006-invalid/manifest.json"));
  testing::expect_audit_verified(run);
}

// The Fallback: a corrupt newest checkpoint no longer stops the resume.
TEST(Resume, ACorruptNewestCheckpointFallsBackToTheNewestValidOne) {
  TempDir dir;
  const std::string run = six_steps(dir);
  const std::string weights = weights_of(run, 6), file = step_dir(run, 6) + "/model.safetensors";
  std::string bytes = read_file(file);
  bytes[bytes.size() - 5] ^= 0x10;
  testing::write_text(file, bytes);

  auto r = run_triad("train --resume " + run + " --steps 6 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model.safetensors: SHA-256 does not match"));
  EXPECT_THAT(r.err, HasSubstr("resuming " + run + " from " + step_dir(run, 4)));
  EXPECT_EQ(weights_of(run, 6), weights);
  testing::expect_audit_verified(run);
}

// Without an audit log the manifest's step is still checked against its directory.
TEST(Resume, AStepThatIsNotItsDirectorysIsSkipped) {
  TempDir dir;
  const std::string run = six_steps(dir);
  fs::remove_all(run + "/audit");
  edit_manifest(step_dir(run, 6), "/step", 5);
  auto r = run_triad("train -q --resume " + run + " --steps 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("\"step\" is 5, but the directory is step 6"));
  EXPECT_EQ(nlohmann::json::parse(read_file(step_dir(run, 6) + "/manifest.json"))["step"], 6);
}

// It was skipped silently, then blocked every resume with "step_000040 already exists".
TEST(Resume, AStepWithoutAManifestIsSetAsideAndDoesNotBlockLaterSaves) {
  TempDir dir;
  const std::string run = six_steps(dir);
  fs::remove(step_dir(run, 6) + "/manifest.json");
  auto r = run_triad("train -q --resume " + run + " --steps 8");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no manifest.json"));
  EXPECT_THAT(r.err, HasSubstr("moved it to " + run + "/checkpoints/rejected/step_000006-no-manifest"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/rejected/step_000006-no-manifest/model.safetensors"));
  EXPECT_TRUE(fs::exists(step_dir(run, 8) + "/manifest.json"));
  r = run_triad("train -q --resume " + run + " --steps 10");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(step_dir(run, 10)));
  testing::expect_audit_verified(run);
}

// A kill while writing leaves step_N.tmp-PID/; one of a process still alive may be another writer's.
TEST(Resume, TemporariesOfProcessesThatAreGoneAreRemoved) {
  TempDir dir;
  const std::string run = six_steps(dir);
  const std::string dead_pid = testing::run_command("sh -c 'echo $$'").out;
  const std::string dead = run + "/checkpoints/step_000008.tmp-" + dead_pid.substr(0, dead_pid.find('\n'));
  const std::string live = run + fmt::format("/checkpoints/step_000008.tmp-{}", getpid());
  for (const std::string& d : {dead, live}) {
    fs::create_directories(d);
    testing::write_text(d + "/model.safetensors", "half");
  }
  auto r = run_triad("train --resume " + run + " --steps 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_THAT(r.err, HasSubstr("removed " + dead + ": a checkpoint write cut short"));
  EXPECT_TRUE(fs::exists(live + "/model.safetensors"));
}

// Killed after step_N/ was renamed into place but before its audit entry: the log does not vouch for it.
TEST(Resume, ACheckpointTheAuditLogNeverRecordedIsNamedByVerifyAndNotResumedFrom) {
  TempDir dir;
  const std::string run = six_steps(dir);
  fs::copy(step_dir(run, 6), step_dir(run, 8));
  edit_manifest(step_dir(run, 8), "/step", 8);  // its files still match: only the log tells

  auto verified = run_triad("audit verify " + run);
  EXPECT_EQ(verified.exit_code, 1);
  EXPECT_THAT(verified.out, HasSubstr("checkpoints/step_000008: a checkpoint the log never recorded"));

  auto r = run_triad("train --resume " + run + " --steps 8 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("skipped " + step_dir(run, 8) + " (not in the audit log"));
  EXPECT_THAT(r.err, HasSubstr("from " + step_dir(run, 6)));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/rejected/step_000008-unlogged"));
  testing::expect_audit_verified(run);
}

TEST(Resume, CheckpointChoosesOneByHandAndItIsStillChecked) {
  TempDir dir;
  const std::string run = six_steps(dir);
  const std::string weights = weights_of(run, 6);
  auto r = run_triad("train -q --resume " + run + " --checkpoint step_4 --steps 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("moved it to " + run + "/checkpoints/rejected/step_000006-newer"));
  EXPECT_EQ(weights_of(run, 6), weights);
  r = run_triad("train -q --resume " + run + " --checkpoint " + step_dir(run, 4) + "/ --steps 6");
  EXPECT_EQ(r.exit_code, 0) << r.err;

  EXPECT_THAT(run_triad("train -q --resume " + run + " --checkpoint step_000003"),
              RefusedWith("step_000003 does not exist"));
  EXPECT_THAT(run_triad("train -q --resume " + run + " --checkpoint " + dir.path()),
              RefusedWith("not a checkpoint of " + run));
  EXPECT_THAT(run_triad("train -q --checkpoint step_4 --steps 6"), RefusedWith("only applies with --resume"));
  edit_manifest(step_dir(run, 4), "/loss", 1.0);
  auto changed = run_triad("train -q --resume " + run + " --checkpoint step_4 --steps 6");
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_THAT(changed.err, HasSubstr("--checkpoint " + step_dir(run, 4) + ": "));
  EXPECT_THAT(changed.err, HasSubstr("the manifest was changed"));
}

// It printed "step 6 of 3" and exited 0.
TEST(Resume, StepsBelowTheRunsStepAreRefused) {
  TempDir dir;
  const std::string run = six_steps(dir);
  EXPECT_THAT(run_triad("train -q --resume " + run + " --steps 3"),
              RefusedWith(run + " is at step 6; --steps 3 is below it"));
  auto same = run_triad("train -q --resume " + run + " --steps 6");
  EXPECT_EQ(same.exit_code, 0) << same.err;
}

}  // namespace
}  // namespace triad
