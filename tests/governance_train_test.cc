// Governance wired into training, end to end through the triad binary: every run's audit log, signed
// heads, tamper detection on checkpoint files, policy decisions (alert, halt with exit code 3, review),
// resume continuing the same log, failed runs, pruned checkpoints and logged inference.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using testing::fixture;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RefusedWith;
using testing::run_triad;
using testing::TempDir;
using testing::train_args;

// A key pair in `dir`: returns the prefix (NAME.key, NAME.pub).
std::string make_key(const TempDir& dir) {
  std::string prefix = dir / "keys/auditor";
  auto r = run_triad("audit keygen --out " + prefix);
  if (r.exit_code != 0) throw std::runtime_error(r.err);
  return prefix;
}

std::vector<nlohmann::json> entries(const std::string& run) {
  return testing::read_jsonl(run + "/audit/log.jsonl");
}

std::vector<nlohmann::json> of_kind(const std::string& run, const std::string& kind) {
  std::vector<nlohmann::json> out;
  for (const auto& e : entries(run)) {
    if (e["kind"] == kind) out.push_back(e["payload"]);
  }
  return out;
}

std::string write_policy(const TempDir& dir, const std::string& text) {
  std::string path = dir / "policy.toml";
  testing::write_text(path, text);
  return path;
}

TEST(GovernanceTrain, SignedRunVerifiesAndAChangedCheckpointByteIsNamed) {
  TempDir dir;
  std::string key = make_key(dir), run = dir / "run";
  auto r = run_triad(train_args(run, "--steps 4 --ckpt-every 2 --eval-every 2 --audit-key " + key + ".key"));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto start = of_kind(run, "run_start");
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0]["config"]["steps"], 4);
  EXPECT_EQ(start[0]["config_sha256"].get<std::string>().size(), 64u);
  EXPECT_FALSE(start[0]["triad_version"].get<std::string>().empty());
  ASSERT_EQ(start[0]["files"].size(), 1u);  // the data manifest of `triad prepare`
  EXPECT_EQ(start[0]["files"][0]["sha256"], sha256_file_hex(testing::fixture_data() + "/manifest.json"));
  EXPECT_THAT(start[0]["command"].dump(), HasSubstr("--audit-key"));
  EXPECT_FALSE(entries(run)[1]["host"].get<std::string>().empty());

  auto checkpoints = of_kind(run, "checkpoint");
  ASSERT_EQ(checkpoints.size(), 2u);
  for (const auto& c : checkpoints) {
    ASSERT_EQ(c["files"].size(), 3u);  // model, optimizer, manifest
    for (const auto& f : c["files"]) {
      EXPECT_EQ(f["sha256"], sha256_file_hex(run + "/" + f["path"].get<std::string>())) << f["path"];
    }
  }
  EXPECT_EQ(of_kind(run, "eval").size(), 2u);
  auto end = of_kind(run, "run_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["status"], "completed");
  EXPECT_EQ(end[0]["review"], false);
  // A head after each checkpoint and at the end, all signed.
  EXPECT_TRUE(fs::exists(run + "/audit/heads/000003.ckpt"));
  EXPECT_THAT(read_file(run + "/audit/heads/000003.ckpt"), HasSubstr("— auditor "));

  auto verified = run_triad("audit verify " + run + " --pubkey " + key + ".pub");
  ASSERT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_THAT(verified.out, HasSubstr("3 heads (3 with a verified signature)"));

  std::string weights = run + "/checkpoints/step_000004/model.safetensors";
  std::string bytes = read_file(weights);
  bytes[bytes.size() / 2] ^= 0x01;
  testing::write_text(weights, bytes);
  auto tampered = run_triad("audit verify " + run + " --pubkey " + key + ".pub");
  EXPECT_EQ(tampered.exit_code, 1);
  EXPECT_THAT(tampered.out, HasSubstr("logged file checkpoints/step_000004/model.safetensors has changed"));
  EXPECT_THAT(tampered.err, HasSubstr("audit verification failed"));
}

TEST(GovernanceTrain, EveryRunIsAuditedAndUnsignedHeadsAreReported) {
  TempDir dir;
  std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 2 --eval-every 0")).exit_code, 0);
  auto verified = run_triad("audit verify " + run);
  ASSERT_EQ(verified.exit_code, 0) << verified.out;
  EXPECT_THAT(verified.out, HasSubstr("heads are unsigned"));
  EXPECT_EQ(of_kind(run, "signing_key").size(), 0u);
  EXPECT_EQ(of_kind(run, "policy").size(), 0u);
}

TEST(GovernanceTrain, AHaltRuleStopsWithExitCode3NamingTheRule) {
  TempDir dir;
  std::string run = dir / "run";
  std::string policy = write_policy(dir, R"([[rule]]
name = "stop-early"
when = "step >= 3"
action = "halt"
)");
  auto r = run_triad(train_args(run, "--steps 8 --ckpt-every 0 --eval-every 0 --policy " + policy));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("halted at step 3: policy rule 'stop-early'"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_000003/model.safetensors"));

  auto decisions = of_kind(run, "policy_decision");
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0]["rule"], "stop-early");
  EXPECT_EQ(decisions[0]["action"], "halt");
  EXPECT_EQ(decisions[0]["step"], 3);
  auto rules = of_kind(run, "policy");
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0]["files"][0]["sha256"], sha256_file_hex(policy));
  auto end = of_kind(run, "run_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["status"], "halted");
  EXPECT_THAT(end[0]["reason"].get<std::string>(), HasSubstr("stop-early"));
  auto checkpoints = of_kind(run, "checkpoint");
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0]["step"], 3);
  EXPECT_EQ(run_triad("audit verify " + run).exit_code, 0);

  // After a review the run continues with the same policy: the rule that halted it is still holding, so
  // (as in an uninterrupted run) it fires again only after it has been false once.
  auto resumed = run_triad("train -q --resume " + run + " --policy " + policy);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_000008"));
  EXPECT_EQ(of_kind(run, "policy_decision").size(), 1u);
}

TEST(GovernanceTrain, AlertsGoToStderrOncePerEpisodeAndReviewsWriteTheMarker) {
  TempDir dir;
  std::string run = dir / "run";
  std::string policy = write_policy(dir, R"([[rule]]
name = "loss-watch"
when = "loss > 0"
action = "alert"

[[rule]]
name = "needs-eyes"
when = "val_loss > 0"
action = "review"
message = "every validation loss is worth a look"
)");
  auto r = run_triad(train_args(run, "--steps 4 --eval-every 2 --policy " + policy));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("triad: warning: alert: policy rule 'loss-watch' (loss > 0) fired at step 1"));
  EXPECT_THAT(r.err, Not(HasSubstr("fired at step 2: loss")));  // one alert per episode
  EXPECT_THAT(r.err, HasSubstr("review required: policy rule 'needs-eyes'"));

  auto marker = nlohmann::json::parse(read_file(run + "/REVIEW_REQUIRED"));
  EXPECT_EQ(marker["review_required"], true);
  ASSERT_EQ(marker["reasons"].size(), 1u);
  EXPECT_EQ(marker["reasons"][0]["rule"], "needs-eyes");
  EXPECT_EQ(marker["reasons"][0]["step"], 2);

  auto decisions = of_kind(run, "policy_decision");
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0]["rule"], "loss-watch");
  EXPECT_EQ(decisions[0]["action"], "alert");
  EXPECT_EQ(decisions[1]["rule"], "needs-eyes");
  EXPECT_EQ(decisions[1]["action"], "review");
  auto end = of_kind(run, "run_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["status"], "completed");
  EXPECT_EQ(end[0]["review"], true);
  auto card = run_triad("audit card " + run + " --out -");
  EXPECT_THAT(card.out, HasSubstr("needing review"));
}

TEST(GovernanceTrain, ResumeContinuesTheSameLogAndVerifyStillPasses) {
  TempDir dir;
  std::string key = make_key(dir), run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 4 --ckpt-every 2 --eval-every 0 --audit-key " + key + ".key"))
                .exit_code,
            0);
  const std::string origin = entries(run)[0]["payload"]["origin"];
  const size_t before = entries(run).size();

  // Without the key the signed log cannot continue: a usage error before any work, and nothing logged.
  EXPECT_THAT(run_triad("train -q --resume " + run + " --steps 6"),
              RefusedWith("resume it with --audit-key"));
  EXPECT_EQ(entries(run).size(), before);

  // A crash in the middle of an append leaves a torn line: the resume cuts it off and logs that it did.
  std::string log_path = run + "/audit/log.jsonl";
  testing::write_text(log_path, read_file(log_path) + "{\"host\":\"to");
  auto r = run_triad("train -q --resume " + run + " --steps 6 --audit-key " + key + ".key");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto all = entries(run);
  EXPECT_EQ(all[0]["payload"]["origin"], origin);
  EXPECT_EQ(all[before]["kind"], "torn_tail_recovered");
  EXPECT_EQ(of_kind(run, "audit_open").size(), 1u);
  auto starts = of_kind(run, "run_start");
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[1]["resumed_from_step"], 4);
  EXPECT_EQ(of_kind(run, "run_end").size(), 2u);
  EXPECT_EQ(of_kind(run, "checkpoint").back()["step"], 6);
  auto verified = run_triad("audit verify " + run + " --pubkey " + key + ".pub");
  EXPECT_EQ(verified.exit_code, 0) << verified.out;
  EXPECT_THAT(verified.out, HasSubstr("every head is signed by the trusted key"));
  auto card = run_triad("audit card " + run + " --out -");
  EXPECT_THAT(card.out, HasSubstr("from step 4."));
  EXPECT_THAT(card.out, HasSubstr("with status **completed**"));
}

TEST(GovernanceTrain, PrunedCheckpointsAreRecordedSoVerifyPasses) {
  TempDir dir;
  std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 6 --ckpt-every 2 --keep-ckpts 1 --eval-every 0")).exit_code,
            0);
  auto removed = of_kind(run, "files_removed");
  ASSERT_EQ(removed.size(), 2u);  // step 2's files at step 4, step 4's at step 6
  EXPECT_EQ(removed[0]["removed"].size(), 3u);
  EXPECT_EQ(removed[0]["step"], 4);
  auto verified = run_triad("audit verify " + run);
  EXPECT_EQ(verified.exit_code, 0) << verified.out;
  EXPECT_THAT(verified.out, HasSubstr("6 logged files were not re-hashed"));
  EXPECT_THAT(run_triad("audit card " + run + " --out -").out,
              HasSubstr("`checkpoints/step_000002/model.safetensors` (removed since)"));

  // A checkpoint deleted by hand is still caught.
  fs::remove(run + "/checkpoints/step_000006/optimizer.safetensors");
  auto missing = run_triad("audit verify " + run);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.out, HasSubstr("logged file checkpoints/step_000006/optimizer.safetensors is missing"));
}

TEST(GovernanceTrain, AFailedRunEndsItsLogAsFailed) {
  TempDir dir;
  std::string run = dir / "run";
  auto r =
      run_triad(train_args(run, "--steps 40 --ckpt-every 1 --eval-every 0 --lr 1e6 --warmup 0 --clip 0"));
  ASSERT_EQ(r.exit_code, 1);
  auto end = of_kind(run, "run_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(end[0]["status"], "failed");
  EXPECT_EQ(run_triad("audit verify " + run).exit_code, 0);
}

TEST(GovernanceTrain, BadGovernanceFlagsFailBeforeAnyWork) {
  TempDir dir;
  auto policy = run_triad(train_args(dir / "a", "--steps 2 --policy " + (dir / "nope.toml")));
  EXPECT_THAT(policy, RefusedWith("nope.toml: no such file"));
  EXPECT_FALSE(fs::exists(dir / "a"));

  std::string bad = write_policy(dir, "[[rule]]\nname = \"x\"\nwhen = \"loss >\"\naction = \"halt\"\n");
  EXPECT_THAT(run_triad(train_args(dir / "b", "--steps 2 --policy " + bad)),
              RefusedWith("rule 'x': when, column"));

  auto key = run_triad(train_args(dir / "c", "--steps 2 --audit-key " + (dir / "missing.key")));
  EXPECT_THAT(key, RefusedWith("--audit-key"));
  EXPECT_FALSE(fs::exists(dir / "c"));
}

TEST(GovernanceTrain, GenerateLogsInferenceHashesAndTextOnRequest) {
  TempDir dir;
  std::string key = make_key(dir), run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 2 --eval-every 0 --audit-key " + key + ".key")).exit_code, 0);
  const std::string generate =
      "generate --checkpoint " + run + " --prompt 'The jury' --max-tokens 6 --seed 3";

  auto plain = run_triad(generate + " --audit");  // the log is signed: without the key it stays unsealed
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.err, HasSubstr("stays unsealed"));
  auto with_text = run_triad(generate + " --audit --log-text --audit-key " + key + ".key");
  ASSERT_EQ(with_text.exit_code, 0) << with_text.err;
  EXPECT_EQ(plain.out, with_text.out);

  auto inferences = of_kind(run, "inference");
  ASSERT_EQ(inferences.size(), 2u);
  std::string printed = plain.out.substr(0, plain.out.size() - 1);  // without the newline
  for (const auto& i : inferences) {
    EXPECT_EQ(i["prompt_sha256"], sha256_hex("The jury"));
    EXPECT_EQ(i["output_sha256"], sha256_hex(printed));
    EXPECT_EQ(i["checkpoint"], "checkpoints/step_000002");
    EXPECT_EQ(i["model_sha256"], sha256_file_hex(run + "/checkpoints/step_000002/model.safetensors"));
    EXPECT_EQ(i["seed"], 3);
  }
  EXPECT_FALSE(inferences[0].contains("prompt"));
  EXPECT_EQ(inferences[1]["prompt"], "The jury");
  EXPECT_EQ(inferences[1]["output"], printed);
  EXPECT_EQ(run_triad("audit verify " + run + " --pubkey " + key + ".pub").exit_code, 0);

  EXPECT_THAT(run_triad(generate + " --log-text"), RefusedWith("only apply with --audit"));
}

// ---- DP-SGD (--dp-noise, --dp-clip, --dp-delta) ----

std::vector<nlohmann::json> step_records(const std::string& run) {
  std::vector<nlohmann::json> out;
  for (auto& m : testing::read_jsonl(run + "/metrics.jsonl")) {
    if (m.contains("loss")) out.push_back(m);
  }
  return out;
}

const std::string kDp = " --dp-noise 1.0 --dp-clip 1.0 --dp-delta 1e-5 ";

TEST(DpTrain, EpsilonOfEveryStepIsTheAccountantsForTheSameQAndSteps) {
  TempDir dir;
  std::string run = dir / "run";
  std::string policy = write_policy(dir, R"([[rule]]
name = "privacy-budget"
when = "dp_epsilon > 0.5"
action = "review"
)");
  auto r = run_triad(train_args(run, "--steps 6 --ckpt-every 3 --eval-every 3 --policy " + policy + kDp));
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // q = expected batch / N, N the training windows of T + 1 = 17 tokens that the sampler cuts.
  auto manifest = nlohmann::json::parse(read_file(testing::fixture_data() + "/manifest.json"));
  uint64_t windows = 0;
  for (const auto& shard : manifest["shards"]) {
    if (shard["split"] == "train") windows += (shard["tokens"].get<uint64_t>() - 1) / 16;
  }
  auto privacy = of_kind(run, "privacy");
  ASSERT_EQ(privacy.size(), 2u);  // steps 3 and 6: eval, checkpoint and end share one entry per step
  const double q = privacy[0]["sample_rate"];
  EXPECT_DOUBLE_EQ(q, 4.0 / static_cast<double>(windows));
  EXPECT_EQ(privacy[0]["noise_multiplier"], 1.0);
  EXPECT_EQ(privacy[1]["steps"], 6);

  auto steps = step_records(run);
  ASSERT_EQ(steps.size(), 6u);
  double total_batch = 0;
  for (size_t t = 1; t <= steps.size(); ++t) {
    const auto& m = steps[t - 1];
    EXPECT_EQ(m["dp_delta"], 1e-5);
    total_batch += m["dp_batch"].get<double>();
    auto cli = run_triad(
        fmt::format("privacy epsilon --sample-rate {:.17g} --noise 1.0 --steps {} --delta 1e-5", q, t));
    ASSERT_EQ(cli.exit_code, 0) << cli.err;
    EXPECT_DOUBLE_EQ(m["dp_epsilon"].get<double>(), nlohmann::json::parse(cli.out)["epsilon"].get<double>())
        << "step " << t;
  }
  EXPECT_GT(total_batch, 0);
  EXPECT_DOUBLE_EQ(privacy[1]["epsilon"].get<double>(), steps.back()["dp_epsilon"].get<double>());
  EXPECT_DOUBLE_EQ(of_kind(run, "run_end")[0]["dp_epsilon"].get<double>(),
                   steps.back()["dp_epsilon"].get<double>());
  // The ledger travels in the checkpoint.
  auto ckpt = nlohmann::json::parse(read_file(run + "/checkpoints/step_000003/manifest.json"));
  EXPECT_EQ(ckpt["dp"]["accountant"]["history"], nlohmann::json::parse(fmt::format("[[{:.17g},1.0,3]]", q)));
  // Policies see dp_epsilon.
  auto decisions = of_kind(run, "policy_decision");
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0]["rule"], "privacy-budget");
  EXPECT_EQ(decisions[0]["step"], 1);
  EXPECT_EQ(run_triad("audit verify " + run).exit_code, 0);
}

TEST(DpTrain, ResumeIsBitExactAndTheSeedDoesNotDecideBatchesOrNoise) {
  TempDir dir;
  std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 8 --ckpt-every 4 --eval-every 0" + kDp)).exit_code, 0);
  std::string final_dir = run + "/checkpoints/step_000008";
  std::string weights = sha256_file_hex(final_dir + "/model.safetensors");
  auto project = [](const std::vector<nlohmann::json>& records) {
    std::vector<std::array<double, 3>> out;
    for (const auto& m : records)
      out.push_back({m["loss"].get<double>(), m["dp_epsilon"].get<double>(), m["dp_batch"].get<double>()});
    return out;
  };
  auto straight = project(step_records(run));
  std::filesystem::remove_all(final_dir);  // as if the run had died after step 4's checkpoint
  auto r = run_triad("train -q --resume " + run + " --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sha256_file_hex(final_dir + "/model.safetensors"), weights);
  EXPECT_EQ(project(step_records(run)), straight);
  EXPECT_EQ(run_triad("audit verify " + run).exit_code, 0);

  // The same --seed again: the same initial weights, but other batches and other noise (secret seeds).
  ASSERT_EQ(run_triad(train_args(dir / "again", "--steps 8 --ckpt-every 4 --eval-every 0" + kDp)).exit_code,
            0);
  EXPECT_NE(sha256_file_hex(dir / "again/checkpoints/step_000008/model.safetensors"), weights);
  EXPECT_NE(read_file(run + "/checkpoints/step_000004/manifest.json").find("\"noise_rng\""),
            std::string::npos);
}

TEST(DpTrain, FlagsAreCheckedTogether) {
  TempDir dir;
  EXPECT_THAT(run_triad(train_args(dir / "a", "--steps 1 --dp-noise 1.0 --dp-delta 1e-5")),
              RefusedWith("--dp-noise needs --dp-clip"));
  EXPECT_THAT(run_triad(train_args(dir / "b", "--steps 1 --dp-noise 1.0 --dp-clip 1")),
              RefusedWith("--dp-noise needs --dp-delta"));
  EXPECT_THAT(run_triad(train_args(dir / "c", "--steps 1 --dp-clip 1")),
              RefusedWith("only apply with --dp-noise"));
  EXPECT_THAT(run_triad(train_args(dir / "d", "--steps 1 --grad-accum 2" + kDp)),
              RefusedWith("--grad-accum 2 does not apply under DP-SGD"));
  EXPECT_THAT(run_triad(train_args(dir / "e", "--steps 1 --batch 100000" + kDp)),
              RefusedWith("exceeds the 1499 training windows"));

  ASSERT_EQ(run_triad(train_args(dir / "f", "--steps 2 --eval-every 0" + kDp)).exit_code, 0);
  EXPECT_THAT(run_triad("train --resume " + (dir / "f") + " --dp-noise 2.0"),
              RefusedWith("dp_noise = 1.0, the command asks 2.0"));
}

}  // namespace
}  // namespace triad

namespace triad {
namespace {

// A rule on a metric the trainer never reports is refused before any training, with the likely one.
TEST(GovernanceTrain, APolicyOnAMisspeltMetricIsRefusedUpFront) {
  testing::TempDir dir;
  testing::write_text(dir / "policy.toml",
                      "[[rule]]\nname = \"spike\"\nwhen = \"grad_nrom > 10\"\naction = \"halt\"\n");
  auto r =
      testing::run_triad(testing::tiny_train_args(dir / "run", "--steps 1 --policy " + dir / "policy.toml"));
  EXPECT_THAT(r, testing::RefusedWith("rule 'spike': when reads 'grad_nrom'"));
  EXPECT_THAT(r.err, ::testing::HasSubstr("did you mean grad_norm?"));
  EXPECT_FALSE(std::filesystem::exists(dir / "run"));
}

}  // namespace
}  // namespace triad
