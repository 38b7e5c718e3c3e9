// A run, its checkpoints and its data agree on the tokenizer by SHA-256 (train/tokenizer_agreement.h):
// train, resume, eval and generate refuse another tokenizer, naming the files that disagree. Before, another
// tokenizer of the same size gave garbage text or a loss, with exit 0.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "train_test_util.h"
#include "triad/core/file_io.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_triad;
using testing::TempDir;
using testing::train_args;

// Prepared data with a tokenizer of the same size as fixture_data()'s, trained on other text.
const std::string& other_data() {
  static TempDir dir;
  static std::string path = [] {
    std::string out = dir / "other";
    auto r = run_triad("prepare -q --input " + testing::fixture("fixture/brown_more.jsonl.gz") + " --out " +
                       out + " --vocab-size 400 --val-fraction 0.5 --max-tokens 64 --blocklist off");
    if (r.exit_code != 0) throw std::runtime_error(r.err);
    return out;
  }();
  return path;
}

std::string trained_run(const TempDir& dir, const std::string& flags = "") {
  const std::string run = dir / "run";
  auto r = run_triad(train_args(run, "--steps 2 --eval-every 0 " + flags));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return run;
}

TEST(TokenizerAgreement, TrainRefusesDataWhoseTokenizerIsNotTheOneItsManifestRecords) {
  TempDir dir;
  fs::copy(testing::fixture_data(), dir / "data");
  std::string bytes = read_file(dir / "data/tokenizer.model");
  bytes[bytes.size() / 2] ^= 0x01;
  testing::write_text(dir / "data/tokenizer.model", bytes);
  auto r = run_triad(train_args(dir / "run", "--steps 1 --data " + (dir / "data")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr((dir / "data/tokenizer.model") + " is SHA-256 "));
  EXPECT_THAT(r.err, HasSubstr((dir / "data/manifest.json") + " (tokenizer.sha256) is "));
  EXPECT_FALSE(fs::exists(dir / "run"));
}

TEST(TokenizerAgreement, ResumeAndGenerateRefuseAnotherTokenizerInTheRun) {
  TempDir dir;
  const std::string run = trained_run(dir);
  fs::copy_file(other_data() + "/tokenizer.model", run + "/tokenizer.model",
                fs::copy_options::overwrite_existing);
  for (const std::string& command : {"train -q --resume " + run + " --steps 4",
                                     "generate --checkpoint " + run + " --prompt The --max-tokens 4"}) {
    auto r = run_triad(command);
    EXPECT_EQ(r.exit_code, 1) << command;
    EXPECT_THAT(r.err, HasSubstr(run + "/tokenizer.model is SHA-256 ")) << command;
    EXPECT_THAT(r.err, HasSubstr(run + "/checkpoints/step_000002/manifest.json (tokenizer_sha256) is "))
        << command;
  }
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step_000004"));
}

TEST(TokenizerAgreement, ResumeRefusesDataPreparedWithAnotherTokenizer) {
  TempDir dir;
  fs::copy(testing::fixture_data(), dir / "data");
  const std::string run = trained_run(dir, "--data " + (dir / "data"));
  fs::remove_all(dir / "data");
  fs::copy(other_data(), dir / "data");  // prepared again, by another tokenizer
  auto r = run_triad("train -q --resume " + run + " --steps 4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(run + "/tokenizer.model is SHA-256 "));
  EXPECT_THAT(r.err, HasSubstr((dir / "data/manifest.json") + " (tokenizer.sha256) is "));
}

TEST(TokenizerAgreement, EvalRefusesDataOfAnotherTokenizer) {
  TempDir dir;
  const std::string run = trained_run(dir);
  auto r = run_triad("eval --checkpoint " + run + " --data " + other_data() + " --batch 2 --threads 1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr(run + "/checkpoints/step_000002/manifest.json (tokenizer_sha256) is "));
  EXPECT_THAT(r.err, HasSubstr(other_data() + "/manifest.json (tokenizer.sha256) is "));
  auto same =
      run_triad("eval --checkpoint " + run + " --data " + testing::fixture_data() + " --batch 2 --threads 1");
  EXPECT_EQ(same.exit_code, 0) << same.err;
}

}  // namespace
}  // namespace triad
