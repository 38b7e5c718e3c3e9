// End-to-end training through the triad binary on the fixture corpus: determinism, exact resume,
// checkpoints, NaN handling, eval and generate, and their errors. Data parallelism: data_parallel_test.cc.

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

TEST(Train, SameSeedGivesBitIdenticalLosses) {
  TempDir dir;
  for (const char* run : {"a", "b"}) {
    auto r = run_triad(train_args(dir / run, "--steps 20 --eval-every 0 --ckpt-every 0"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto a = losses(dir / "a"), b = losses(dir / "b");
  ASSERT_EQ(a.size(), 20u);
  EXPECT_EQ(a, b);
  EXPECT_LT(a.back(), a.front() - 0.5) << "the model should learn";
  auto other = run_triad(train_args(dir / "c", "--steps 3 --seed 99 --eval-every 0"));
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(losses(dir / "c")[1], a[1]);
}

TEST(Train, MetricsHoldEveryRequiredField) {
  TempDir dir;
  ASSERT_EQ(run_triad(train_args(dir / "run", "--steps 4 --eval-every 2")).exit_code, 0);
  int steps = 0, evals = 0;
  for (const auto& m : metrics(dir / "run")) {
    if (m.contains("val_loss")) {
      ++evals;
      EXPECT_TRUE(m.contains("val_ppl"));
      EXPECT_NEAR(m["val_ppl"].get<double>(), std::exp(m["val_loss"].get<double>()), 1e-6);
      continue;
    }
    ++steps;
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens_per_s", "step_ms",
                            "peak_activation_bytes", "peak_rss_bytes"}) {
      EXPECT_TRUE(m.contains(key)) << key;
    }
    EXPECT_GT(m["peak_activation_bytes"].get<double>(), 0);
  }
  EXPECT_EQ(steps, 4);
  EXPECT_EQ(evals, 2);
}

TEST(Train, ResumeContinuesBitExactly) {
  TempDir dir;
  std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 12 --ckpt-every 6 --eval-every 0")).exit_code, 0);
  std::string final_dir = run + "/checkpoints/step_000012";
  std::string weights = sha256_file_hex(final_dir + "/model.safetensors");
  std::string moments = sha256_file_hex(final_dir + "/optimizer.safetensors");
  auto straight = losses(run);
  fs::remove_all(final_dir);  // as if the run had died after step 6's checkpoint

  // Remat may change on resume: it changes memory, never a gradient.
  auto r = run_triad("train -q --resume " + run + " --threads 2 --remat full");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sha256_file_hex(final_dir + "/model.safetensors"), weights);
  EXPECT_EQ(sha256_file_hex(final_dir + "/optimizer.safetensors"), moments);
  EXPECT_EQ(losses(run), straight) << "metrics.jsonl holds each step once, with the same values";

  // Extending the run: --steps raises the total.
  r = run_triad("train -q --resume " + run + " --steps 14");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step_000014"));
  EXPECT_EQ(losses(run).size(), 14u);
}

// --optimizer-states 8bit: the checkpoint keeps the codes and scales as they are, so a resumed run repeats
// the uninterrupted one bit for bit; the run keeps the choice, and a resume cannot change it.
TEST(Train, EightBitStatesResumeBitExactly) {
  TempDir dir;
  std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 12 --ckpt-every 6 --eval-every 0 --optimizer-states 8bit"))
                .exit_code,
            0);
  std::string final_dir = run + "/checkpoints/step_000012";
  {
    SafetensorsFile state(final_dir + "/optimizer.safetensors");
    EXPECT_EQ(state.metadata().at("optimizer_states"), "8bit");
    const SafeTensor* codes = state.find("m8.h.0.mlp.fc.weight");
    ASSERT_NE(codes, nullptr);
    EXPECT_NE(codes->u8, nullptr) << "U8 codes";
    ASSERT_NE(state.find("v8_absmax.h.0.mlp.fc.weight"), nullptr);
    EXPECT_EQ(state.find("m.h.0.mlp.fc.weight"), nullptr);
    // The embeddings and tensors under 4096 values keep fp32 moments, as under bitsandbytes.
    EXPECT_NE(state.find("m.wte.weight"), nullptr);
    EXPECT_NE(state.find("v.h.0.attn.qkv.weight"), nullptr);
  }
  std::string weights = sha256_file_hex(final_dir + "/model.safetensors");
  std::string moments = sha256_file_hex(final_dir + "/optimizer.safetensors");
  auto straight = losses(run);
  fs::remove_all(final_dir);
  auto r = run_triad("train -q --resume " + run);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sha256_file_hex(final_dir + "/model.safetensors"), weights);
  EXPECT_EQ(sha256_file_hex(final_dir + "/optimizer.safetensors"), moments);
  EXPECT_EQ(losses(run), straight);
  EXPECT_EQ(nlohmann::json::parse(read_file(run + "/run.json"))["options"]["optimizer_states"], "8bit");
  EXPECT_THAT(run_triad("train -q --resume " + run + " --steps 14 --optimizer-states fp32"),
              RefusedWith("optimizer_states"));
  // The same run with fp32 states: the same first step (from zero moments the update is the same), then
  // other bits.
  ASSERT_EQ(run_triad(train_args(dir / "fp32", "--steps 12 --ckpt-every 0 --eval-every 0")).exit_code, 0);
  const auto fp32 = losses(dir / "fp32");
  EXPECT_EQ(fp32[0], straight[0]);
  EXPECT_EQ(fp32[1], straight[1]) << "step 1 moved the weights identically";
  EXPECT_NE(fp32[11], straight[11]);
  EXPECT_NEAR(fp32[11], straight[11], 0.05 * fp32[11]);
}

// --fused-update: each block's AdamW step in the backward, with the gradient freed. Without clipping it is
// today's update bit for bit; with clipping (each step, --clip 1e-3) the norm sums the blocks in another
// order, so the weights agree within float rounding. With 8-bit states it resumes bit-exactly.
TEST(Train, FusedUpdateIsTheUnfusedUpdate) {
  TempDir dir;
  auto weights_of = [](const std::string& run) {
    SafetensorsFile f(run + "/checkpoints/step_000004/model.safetensors");
    const SafeTensor& t = f.get("h.1.mlp.fc.weight", {128, 32});
    return std::vector<float>(t.data, t.data + 128 * 32);
  };
  for (const char* clip : {"100", "1e-3"}) {
    const std::string flags = std::string("--steps 4 --eval-every 0 --clip ") + clip;
    const std::string plain = dir / (std::string("plain") + clip),
                      fused = dir / (std::string("fused") + clip);
    ASSERT_EQ(run_triad(train_args(plain, flags)).exit_code, 0);
    auto r = run_triad(train_args(fused, flags + " --fused-update"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    if (std::string(clip) == "100") {
      EXPECT_EQ(sha256_file_hex(fused + "/checkpoints/step_000004/model.safetensors"),
                sha256_file_hex(plain + "/checkpoints/step_000004/model.safetensors"));
      EXPECT_EQ(losses(fused), losses(plain));
      continue;
    }
    const std::vector<float> a = weights_of(plain), b = weights_of(fused);
    size_t differ = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_NEAR(a[i], b[i], 1e-6 * (1 + std::fabs(a[i]))) << i;
      differ += a[i] != b[i];
    }
    EXPECT_LT(differ, a.size());
  }
  // 8-bit states, fused, resumed from step 2: the uninterrupted run's bits.
  const std::string run = dir / "resumed";
  ASSERT_EQ(run_triad(train_args(run,
                                 "--steps 4 --ckpt-every 2 --eval-every 0 --optimizer-states 8bit "
                                 "--fused-update"))
                .exit_code,
            0);
  const std::string last = run + "/checkpoints/step_000004";
  const std::string weights = sha256_file_hex(last + "/model.safetensors");
  const std::string moments = sha256_file_hex(last + "/optimizer.safetensors");
  fs::remove_all(last);
  auto r = run_triad("train -q --resume " + run);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sha256_file_hex(last + "/model.safetensors"), weights);
  EXPECT_EQ(sha256_file_hex(last + "/optimizer.safetensors"), moments);
  EXPECT_THAT(run_triad(train_args(dir / "accum", "--steps 1 --grad-accum 2 --fused-update")),
              RefusedWith("--fused-update runs in one process without --grad-accum"));
}

// --memory-limit picks what fits and says so; a model that fits in nothing is refused before it starts,
// naming the limit and the least it needs.
TEST(Train, MemoryLimitChoosesOrRefuses) {
  TempDir dir;
  std::string loud = train_args(dir / "fits", "--steps 1 --eval-every 0 --memory-limit 2GiB");
  loud.replace(loud.find(" -q "), 3, "");
  auto r = run_triad(loud);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--memory-limit 2GiB: --optimizer-states fp32 (estimated peak"));
  r = run_triad(train_args(dir / "small", "--steps 1 --memory-limit 20MiB"));
  EXPECT_THAT(r, RefusedWith("--memory-limit 20MiB"));
  EXPECT_THAT(r, RefusedWith("need at least"));
  EXPECT_FALSE(fs::exists(dir / "small"));
}

// A run that does not choose a top-K warm-up gets a twelfth of its steps, and keeps it when resumed for
// longer; one that chooses keeps its own.
TEST(Train, TopKWarmupDefaultsToATwelfthOfTheRunAndKeepsItOnResume) {
  TempDir dir;
  auto warmup = [&](const std::string& name) {
    return nlohmann::json::parse(read_file(dir / (name + "/run.json")))["options"]["topk_warmup"].get<int>();
  };
  ASSERT_EQ(run_triad(train_args(dir / "a", "--steps 36 --ckpt-every 36 --eval-every 0")).exit_code, 0);
  EXPECT_EQ(warmup("a"), 3);
  auto r = run_triad("train -q --resume " + dir / "a" + " --steps 48");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(warmup("a"), 3);
  ASSERT_EQ(run_triad(train_args(dir / "b", "--steps 36 --topk-warmup 0 --eval-every 0")).exit_code, 0);
  EXPECT_EQ(warmup("b"), 0);
}

TEST(Train, KeepsOnlyTheNewestCheckpoints) {
  TempDir dir;
  ASSERT_EQ(
      run_triad(train_args(dir / "run", "--steps 8 --ckpt-every 2 --keep-ckpts 2 --eval-every 0")).exit_code,
      0);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir / "run/checkpoints")) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step_000006", "step_000008"}));
  auto manifest = nlohmann::json::parse(read_file(dir / "run/checkpoints/step_000008/manifest.json"));
  EXPECT_EQ(manifest["files"]["model.safetensors"],
            sha256_file_hex(dir / "run/checkpoints/step_000008/model.safetensors"));
  EXPECT_EQ(manifest["step"], 8);
}

TEST(Train, ADivergingRunStopsNamingTheStepAndTheLastGoodCheckpoint) {
  TempDir dir;
  auto r = run_triad(
      train_args(dir / "run", "--steps 40 --ckpt-every 1 --eval-every 0 --lr 1e6 --warmup 0 --clip 0"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("triad: error: step "));
  EXPECT_THAT(r.err, HasSubstr("The last good checkpoint is"));
  // Every checkpoint on disk is finite: the bad state was never written.
  for (const auto& e : fs::directory_iterator(dir / "run/checkpoints")) {
    auto manifest = nlohmann::json::parse(read_file((e.path() / "manifest.json").string()));
    EXPECT_TRUE(std::isfinite(manifest["loss"].get<double>()));
  }
}

TEST(Train, EvalAndGenerateUseTheRun) {
  TempDir dir;
  std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 6 --eval-every 0")).exit_code, 0);
  auto e =
      run_triad("eval --checkpoint " + run + " --data " + testing::fixture_data() + " --batch 2 --threads 1");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  auto result = nlohmann::json::parse(e.out);
  EXPECT_GT(result["tokens"].get<int>(), 0);
  EXPECT_NEAR(result["val_ppl"].get<double>(), std::exp(result["val_loss"].get<double>()), 1e-6);
  auto g = run_triad("generate --checkpoint " + run + " --prompt 'The jury' --max-tokens 8 --seed 3");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_THAT(g.out, ::testing::StartsWith("The jury"));
  EXPECT_EQ(g.out,
            run_triad("generate --checkpoint " + run + " --prompt 'The jury' --max-tokens 8 --seed 3").out);
}

TEST(TrainErrors, OneLineErrorsSayWhatAndWhere) {
  TempDir dir;
  std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 2 --eval-every 0")).exit_code, 0);

  EXPECT_THAT(run_triad(train_args(run, "--steps 2")),
              RefusedWith("already exists; continue it with --resume"));

  EXPECT_THAT(run_triad("train --resume " + run + " --layers 3"),
              RefusedWith("layers = 2, the command asks 3"));

  EXPECT_THAT(run_triad("eval --checkpoint " + run + " --seq-len 32"),
              RefusedWith("longer than the model's context of 16"));

  auto window = run_triad(train_args(dir / "w", "--seq-len 128"));  // prepare recorded --max-tokens 64
  EXPECT_THAT(window, RefusedWith("exceeds the training window of 64"));

  for (const char* flag : {"--steps 0", "--batch -4", "--comm-timeout x", "--eval-batches -1"}) {
    auto number = run_triad(train_args(dir / "n", flag));
    EXPECT_EQ(number.exit_code, 2);
    EXPECT_THAT(number.err,
                ::testing::ContainsRegex(std::string(flag).substr(0, std::string(flag).find(' ')) +
                                         ": must be (positive|non-negative|a number), got '?[-0-9x]+'?"));
    EXPECT_THAT(number.err, ::testing::Not(HasSubstr("not in range")));
  }

  EXPECT_THAT(run_triad("train --steps 2 --layrs 3"), RefusedWith("--layrs"));
  // Optimizer numbers: NaN and negative values are refused before anything starts.
  EXPECT_THAT(run_triad(train_args(dir / "nan", "--lr nan")),
              RefusedWith("--lr must be a positive number, got nan"));
  EXPECT_THAT(run_triad(train_args(dir / "wd", "--weight-decay -0.1")),
              RefusedWith("--weight-decay must be a non-negative number, got -0.1"));
  EXPECT_THAT(run_triad(train_args(dir / "clip", "--clip inf")),
              RefusedWith("--clip must be a non-negative number"));
  EXPECT_THAT(run_triad(train_args(dir / "beta", "--beta1 1")),
              RefusedWith("--beta1 must be in [0, 1), got 1"));
  EXPECT_THAT(run_triad(train_args(dir / "beta", "--topk-beta1 -0.5")),
              RefusedWith("--topk-beta1 must be in [0, 1), got -0.5"));
  EXPECT_THAT(run_triad(train_args(dir / "beta", "--topk-lr-scale 0")),
              RefusedWith("--topk-lr-scale must be a positive number, got 0"));
  EXPECT_FALSE(fs::exists(dir / "nan"));

  // A corrupted checkpoint file is named.
  std::string weights = run + "/checkpoints/step_000002/model.safetensors";
  std::string bytes = read_file(weights);
  bytes[bytes.size() - 3] ^= 0x40;
  testing::write_text(weights, bytes);
  auto corrupt = run_triad("eval --checkpoint " + run);
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_THAT(corrupt.err, HasSubstr("model.safetensors: SHA-256 does not match"));

  // A corrupted shard is named.
  TempDir copy;
  fs::copy(testing::fixture_data(), copy / "data");
  std::string shard = copy / "data/train-00000.tok";
  bytes = read_file(shard);
  bytes[200] ^= 0x01;
  testing::write_text(shard, bytes);
  auto bad_data = run_triad(train_args(dir / "x", "--data " + (copy / "data") + " --steps 1"));
  EXPECT_EQ(bad_data.exit_code, 1);
  EXPECT_THAT(bad_data.err, HasSubstr("train-00000.tok: checksum mismatch"));
}

// They were accepted: --seq-len -1 evaluated at the model's length, --temperature -1 sampled greedily.
TEST(TrainErrors, EvalAndGenerateRefuseNumbersOutOfRange) {
  TempDir dir;
  const std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 2 --eval-every 0")).exit_code, 0);
  EXPECT_THAT(run_triad("eval --checkpoint " + run + " --seq-len -1"),
              RefusedWith("--seq-len: must be non-negative, got -1"));
  const std::string generate = "generate --checkpoint " + run + " --prompt The --max-tokens 4 ";
  EXPECT_THAT(run_triad(generate + "--temperature -1"),
              RefusedWith("--temperature must be a non-negative number (0: greedy), got -1"));
  EXPECT_THAT(run_triad(generate + "--temperature nan"), RefusedWith("--temperature must be"));
  EXPECT_THAT(run_triad(generate + "--temperature inf"), RefusedWith("--temperature must be"));
  EXPECT_THAT(run_triad(generate + "--top-k -5"), RefusedWith("--top-k: must be non-negative, got -5"));
  // 0 stays what it meant: the model's length, greedy sampling, the whole vocabulary.
  EXPECT_EQ(run_triad("eval --checkpoint " + run + " --seq-len 0").exit_code, 0);
  auto greedy = run_triad(generate + "--temperature 0 --top-k 0");
  EXPECT_EQ(greedy.exit_code, 0) << greedy.err;
}

// CLI11 took the next word as the value of "--sample-prompt=": "--out" became the prompt, and RUN a stray
// argument (a usage error).
TEST(TrainCli, AnEmptyValueAfterTheEqualsSignIsTheOptionsValue) {
  TempDir dir;
  const std::string run = dir / "run";
  auto r = run_triad(train_args(
      dir / "ignored", "--steps 2 --eval-every 0 --sample-prompt=The --sample-prompt= --out " + run));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("sample:")));
  EXPECT_EQ(testing::metrics(run).size(), 2u);
  EXPECT_FALSE(fs::exists(dir / "ignored"));
  auto options = nlohmann::json::parse(read_file(run + "/run.json"))["options"];
  EXPECT_EQ(options["sample_prompt"], "");
}

TEST(TrainRemat, PlansChangeMemoryNotResults) {
  TempDir dir;
  ASSERT_EQ(run_triad(train_args(dir / "none", "--steps 6 --eval-every 0")).exit_code, 0);
  auto r = run_triad(
      train_args(dir / "opt", "--steps 6 --eval-every 0 --activation-memory 0.6x --replan-every 2"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(dir / "none"), losses(dir / "opt"));
  EXPECT_EQ(sha256_file_hex(dir / "none/checkpoints/step_000006/model.safetensors"),
            sha256_file_hex(dir / "opt/checkpoints/step_000006/model.safetensors"));
  size_t none_peak = 0;
  for (const auto& m : metrics(dir / "none")) none_peak = m["peak_activation_bytes"];
  for (const auto& m : metrics(dir / "opt")) {
    if (!m.contains("loss")) continue;
    EXPECT_EQ(m["peak_activation_bytes"], m["predicted_peak_activation_bytes"]);
    EXPECT_LE(m["peak_activation_bytes"].get<double>(), 0.6 * none_peak);
    EXPECT_TRUE(m.contains("recompute_ms"));
  }
  auto plans = read_file(dir / "opt/remat_plan.jsonl");
  auto first = nlohmann::json::parse(plans.substr(0, plans.find('\n')));
  EXPECT_EQ(first["planner"], "optimal");
  EXPECT_EQ(first["step"], 0);
  EXPECT_EQ(first["dropped"].size(), 2u);  // one list per block

  EXPECT_THAT(run_triad(train_args(dir / "small", "--steps 1 --activation-memory 0.01x")),
              RefusedWith("below the minimum any plan needs"));
  auto named = run_triad(train_args(dir / "named", "--steps 1 --remat selective --activation-memory 0.3x"));
  EXPECT_THAT(named, RefusedWith("--remat selective needs"));
}

// The model card explains each logged metric with what the trainer declares it to mean (train/records.h).
TEST(Train, TheModelCardSaysWhatEachLoggedMetricMeans) {
  TempDir dir;
  const std::string run = dir / "run";
  ASSERT_EQ(run_triad(train_args(run, "--steps 2 --eval-every 2")).exit_code, 0);
  auto card = run_triad("audit card " + run + " --out -");
  ASSERT_EQ(card.exit_code, 0) << card.err;
  EXPECT_THAT(card.out, HasSubstr("- `val_loss`: " + metric_fields().at("val_loss")));
  EXPECT_THAT(card.out, HasSubstr("- `val_ppl`: "));
}

}  // namespace
}  // namespace triad
