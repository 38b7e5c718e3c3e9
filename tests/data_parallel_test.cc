// Data parallelism end to end: `mpirun -np 2` trains the same model as one process on the same global batch,
// resumes bit-exactly with codec residuals and optimizer shards, and refuses what does not split.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/core/safetensors.h"
#include "triad/core/sha256.h"
#include "triad/train/evaluate.h"
#include "triad/train/records.h"

namespace triad {
namespace {

namespace fs = std::filesystem;
using testing::fixture;
using ::testing::HasSubstr;
using testing::losses;
using testing::metrics;
using testing::RefusedWith;
using testing::run_triad;
using testing::run_triad_mpi;
using testing::TempDir;
using testing::train_args;
using testing::train_on_two_ranks;

// Data parallelism: `mpirun -np 2` trains the same model as one process on the same global batch.
std::vector<double> val_losses(const std::string& run) {
  std::vector<double> out;
  for (const auto& m : metrics(run)) {
    if (m.contains("val_loss")) out.push_back(m["val_loss"].get<double>());
  }
  return out;
}

// What run_eval does over 3 ranks, in one process: the shares, summed, are one process's evaluation.
TEST(DataParallel, EvaluationSharesAddUpToOneProcessBitExactly) {
  const GptConfig config{.layers = 1, .d_model = 16, .heads = 2, .seq_len = 8, .vocab = 400};
  Gpt<float> model(config);
  model.init_weights(7);
  TokenDataset val = TokenDataset::open(testing::fixture_data(), "val");
  const EvalResult one = evaluate(model, val, 7, 2, config.seq_len);
  ASSERT_GT(one.tokens, 0u);
  EvalShare sum;
  for (int rank = 0; rank < 3; ++rank) {
    EvalShare share = evaluate_share(model, val, 7, 2, config.seq_len, rank, 3);
    if (rank == 0) sum.batch_loss.assign(share.batch_loss.size(), 0.0);
    ASSERT_EQ(share.batch_loss.size(), sum.batch_loss.size());
    for (size_t i = 0; i < share.batch_loss.size(); ++i) {
      EXPECT_EQ(share.batch_loss[i] != 0.0, static_cast<int>(i % 3) == rank) << "batch " << i;
      sum.batch_loss[i] += share.batch_loss[i];
    }
    sum.tokens_per_batch = share.tokens_per_batch;
  }
  ASSERT_EQ(sum.batch_loss.size(), 7u) << "every rank has batches to compute";
  const EvalResult three = combine_shares(sum);
  EXPECT_EQ(three.loss, one.loss);
  EXPECT_EQ(three.tokens, one.tokens);
}

TEST(DataParallel, TwoRanksTrainWhatOneProcessTrains) {
  TempDir dir;
  const std::string steps = "--steps 20 --eval-every 10 --ckpt-every 0 ";
  ASSERT_EQ(run_triad(train_args(dir / "one", steps)).exit_code, 0);
  const std::vector<std::string> variants = {"", "--zero 1", "--hierarchical --ranks-per-node 1"};
  for (size_t v = 0; v < variants.size(); ++v) {
    const std::string& variant = variants[v];
    SCOPED_TRACE(variant);
    std::string run = dir / ("two-" + std::to_string(v));
    auto r = run_triad_mpi(2, train_args(run, steps + "--threads 1 " + variant));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    testing::expect_near_relative(losses(dir / "one"), losses(run), 1e-5);
    testing::expect_near_relative(val_losses(dir / "one"), val_losses(run), 1e-5);
    nlohmann::json last = metrics(run)[19];
    ASSERT_TRUE(last.contains("bytes_sent")) << last.dump();
    EXPECT_EQ(last["ranks"], 2);
    EXPECT_GT(last["bytes_sent"].get<double>(), 0);
    EXPECT_GE(last["comm_hidden_fraction"].get<double>(), 0);
    EXPECT_LE(last["comm_hidden_fraction"].get<double>(), 1);
    EXPECT_EQ(last["codec"], "none");
    const double full = metrics(dir / "one")[19]["optimizer_bytes"].get<double>();
    const bool zero = variant == "--zero 1";
    EXPECT_EQ(last["optimizer_bytes"].get<double>(), zero ? full / 2 : full) << "ZeRO-1 halves it";
  }
}

// Deletes the 2-rank run's final checkpoint (step `last`), resumes from the one before, and expects the
// same losses, weights and optimizer moments.
void expect_two_rank_resume_repeats(const std::string& run, int last) {
  const std::string final_dir = run + fmt::format("/checkpoints/step_{:06d}", last);
  const std::string weights = sha256_file_hex(final_dir + "/model.safetensors");
  const std::string moments = sha256_file_hex(final_dir + "/optimizer.safetensors");
  const auto straight = losses(run);
  fs::remove_all(final_dir);
  auto r = run_triad_mpi(2, "train -q --resume " + run + " --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(run), straight);
  EXPECT_EQ(sha256_file_hex(final_dir + "/model.safetensors"), weights);
  EXPECT_EQ(sha256_file_hex(final_dir + "/optimizer.safetensors"), moments);
}

TEST(DataParallel, ResumeIsBitExactWithResidualsAndShards) {
  TempDir dir;
  const std::pair<const char*, const char*> variants[] = {
      {"grad", "--grad-compression topk:0.1"},
      {"zero", "--zero 1"},
      {"zero-8bit", "--zero 1 --optimizer-states 8bit"},  // shards end at quantization blocks
      {"zero-int8",
       "--zero 1 --grad-compression int8 --int8-stochastic"}};  // its rounding noise follows the step
  for (auto [name, variant] : variants) {
    SCOPED_TRACE(variant);
    std::string run = dir / name;
    auto r = run_triad_mpi(
        2, train_args(run, std::string("--steps 12 --ckpt-every 6 --eval-every 0 --threads 1 ") + variant));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_two_rank_resume_repeats(run, 12);
  }
  // The top-K residuals belong to two ranks: one process cannot continue them.
  std::string topk = dir / "grad";
  fs::remove_all(topk + "/checkpoints/step_000012");
  EXPECT_TRUE(fs::exists(topk + "/checkpoints/step_000006/grad_sync.safetensors"));
  EXPECT_THAT(run_triad("train -q --resume " + topk + " --threads 1"), RefusedWith("mpirun -np 2"));
}

// Every bucket travels top-K here, so --topk-beta1 and --topk-lr-scale stand in for --beta1 and --lr.
TEST(DataParallel, TopKBucketsTakeTheirOwnBeta1AndLearningRate) {
  TempDir dir;
  auto run = [&](const std::string& name, const std::string& flags) {
    train_on_two_ranks(dir / name, "--steps 6 --ckpt-every 0 --grad-compression topk:0.1 " + flags);
    return losses(dir / name);
  };
  const auto reference = run("a", "--beta1 0.7 --topk-beta1 0.7 --lr 2e-3 --topk-lr-scale 1");
  ASSERT_EQ(reference.size(), 6u);
  // 4e-3 x 0.5 is 2e-3 exactly, at every step of the schedule.
  EXPECT_EQ(run("b", "--beta1 0.9 --topk-beta1 0.7 --lr 4e-3 --topk-lr-scale 0.5"), reference);
  for (const std::string other : {"--beta1 0.7 --topk-beta1 0.9 --lr 2e-3 --topk-lr-scale 1",
                                  "--beta1 0.7 --topk-beta1 0.7 --lr 2e-3 --topk-lr-scale 0.5"}) {
    const auto losses = run("c", other + " --force");
    EXPECT_EQ(losses[0], reference[0]) << "the first loss comes before any update";
    EXPECT_NE(losses[5], reference[5]) << other;
  }
  const auto options = nlohmann::json::parse(read_file(dir / "b/run.json"))["options"];
  EXPECT_EQ(options["topk_beta1"].get<double>(), 0.7);  // as typed (it was stored as the float 0.7f)
  EXPECT_EQ(options["topk_lr_scale"].get<double>(), 0.5f);
}

// Error feedback holds back most of a gradient, and the clipping of the average never sees what it holds,
// so each rank clips its own gradient first: after one step, residual + what the rank sent is its clipped
// gradient, and with 1 % sent the residual's norm stays within --clip.
TEST(DataParallel, ErrorFeedbackHoldsOnlyClippedGradients) {
  TempDir dir;
  auto residual_norms = [&](const std::string& name, const std::string& clip) {
    train_on_two_ranks(
        dir / name, "--steps 1 --ckpt-every 1 --grad-compression topk:0.01 --topk-warmup 0 --clip " + clip);
    SafetensorsFile file(dir / (name + "/checkpoints/step_000001/grad_sync.safetensors"));
    std::vector<double> sq(2, 0.0);
    for (const SafeTensor& t : file.tensors()) {  // "rank<r>.bucket<b>"
      const size_t rank = static_cast<size_t>(t.name.at(4) - '0');
      for (size_t i = 0; i < t.count(); ++i) sq.at(rank) += static_cast<double>(t.data[i]) * t.data[i];
    }
    for (double& x : sq) x = std::sqrt(x);
    return sq;
  };
  for (double norm : residual_norms("clipped", "0.01")) {
    EXPECT_GT(norm, 0.0);
    EXPECT_LE(norm, 0.01 * (1 + 1e-5));
  }
  for (double norm : residual_norms("unclipped", "1000")) EXPECT_GT(norm, 0.1) << "the tiny model's gradient";
}

TEST(DataParallel, APolicyHaltOnRankZeroStopsEveryRankAndTheAuditVerifies) {
  TempDir dir;
  testing::write_text(dir / "policy.toml",
                      "[[rule]]\nname = \"stop\"\nwhen = \"step >= 3\"\naction = \"halt\"\n");
  std::string run = dir / "run";
  auto r = run_triad_mpi(2, train_args(run,
                                       "--steps 8 --ckpt-every 0 --eval-every 0 --threads 1 "
                                       "--grad-compression topk:0.1 --policy " +
                                           dir / "policy.toml"));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("halted at step 3: policy rule 'stop'"));
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_000003/grad_sync.safetensors"));
  auto verify = run_triad("audit verify " + run);
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

TEST(DataParallel, RefusesWhatDoesNotSplitOverRanks) {
  TempDir dir;
  auto r = run_triad_mpi(2, train_args(dir / "run", "--steps 2 --batch 3 --threads 1"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--batch 3 must be a multiple of 2 data-parallel ranks"));
  r = run_triad_mpi(2, train_args(dir / "dp",
                                  "--steps 2 --threads 1 --dp-noise 1 --dp-clip 1 --dp-delta 1e-5 "
                                  "--grad-compression topk:0.1"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--grad-compression topk:0.1 does not apply under DP-SGD"));
  EXPECT_FALSE(fs::exists(dir / "dp")) << "refused before creating the run";
}

// Under mpirun a command-line mistake is said once (every rank parsed the same line); other errors say
// which rank reports them.
TEST(DataParallel, ErrorsUnderALauncherAreSaidOnceOrNameTheirRank) {
  TempDir dir;
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  auto r = run_triad_mpi(2, "train --steps 0 --out " + dir / "run");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count(r.err, "triad: error: --steps: must be positive, got 0"), 1u) << r.err;
  r = run_triad_mpi(2, "train --data " + dir / "missing" + " --out " + dir / "run");
  EXPECT_NE(r.exit_code, 0);
  // Each rank fails on its own (the first to exit may end the other before it prints).
  EXPECT_THAT(r.err, ::testing::ContainsRegex("triad: error: rank [01]: --data [^ ]*missing is not"));
  EXPECT_EQ(count(r.err, "--data " + dir / "missing"), count(r.err, "triad: error: rank ")) << r.err;
}

// DP-SGD over 2 ranks: the ledger is one process's (it depends on q, sigma and the steps only), the ranks
// agree on batches and noise (a resumed run repeats the straight one bit for bit, which it could not if
// rank 1 drew its own), and ZeRO-1 composes with it.
TEST(DataParallel, DpSgdOverRanksAccountsAsOneProcessAndResumesBitExactly) {
  TempDir dir;
  const std::string dp = " --dp-noise 1.0 --dp-clip 1.0 --dp-delta 1e-5 --eval-every 0 --threads 1 ";
  ASSERT_EQ(run_triad(train_args(dir / "one", "--steps 6 --ckpt-every 0" + dp)).exit_code, 0);
  auto epsilons = [&](const std::string& run) {
    std::vector<double> out;
    for (const auto& m : metrics(run)) out.push_back(m.at("dp_epsilon").get<double>());
    return out;
  };
  for (const char* variant : {"", "--zero 1"}) {
    SCOPED_TRACE(variant);
    std::string run = dir / (std::string(variant).empty() ? "two" : "two-zero");
    auto r = run_triad_mpi(2, train_args(run, "--steps 6 --ckpt-every 3" + dp + variant));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(epsilons(run), epsilons(dir / "one"));
    double examples = 0;
    for (const auto& m : metrics(run)) {
      EXPECT_TRUE(std::isfinite(m["loss"].get<double>()));
      examples += m["dp_batch"].get<double>();
    }
    EXPECT_GT(examples, 6) << "Poisson batches of expected size 4";
    expect_two_rank_resume_repeats(run, 6);
  }
}

}  // namespace
}  // namespace triad
