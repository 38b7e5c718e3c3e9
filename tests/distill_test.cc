// Knowledge distillation (`triad train --teacher`): the soft-target kernel against a scalar double
// implementation of its formula, the whole model's gradient against finite differences, A = 0 against plain
// training, the refusals, and resume.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "gradcheck.h"
#include "tiny_gpt.h"
#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"
#include "triad/kernels/lm_head.h"

namespace triad {
namespace {

using ::testing::HasSubstr;
using testing::losses;
using testing::metrics;
using testing::RefusedWith;
using testing::run_triad;
using testing::TempDir;
using testing::train_args;

// loss = (1 - A) CE + A T^2 KL(p_t^T || p_s^T) per position and d(scale Σ loss)/dlogits, straight from the
// definition: whole (N, V) logits, log-softmax in double.
struct Reference {
  std::vector<double> loss, hard, dlogits;
};

std::vector<double> logits_of(const std::vector<double>& x, const std::vector<double>& wte, int N, int C,
                              int V) {
  std::vector<double> z(static_cast<size_t>(N) * V, 0.0);
  for (int n = 0; n < N; ++n)
    for (int v = 0; v < V; ++v)
      for (int c = 0; c < C; ++c) z[n * V + v] += x[n * C + c] * wte[v * C + c];
  return z;
}

std::vector<double> log_softmax(const double* z, int V, double T) {
  double max = -INFINITY, sum = 0;
  for (int v = 0; v < V; ++v) max = std::max(max, z[v] / T);
  for (int v = 0; v < V; ++v) sum += std::exp(z[v] / T - max);
  std::vector<double> out(V);
  for (int v = 0; v < V; ++v) out[v] = z[v] / T - max - std::log(sum);
  return out;
}

Reference reference(const std::vector<double>& zs, const std::vector<double>& zt,
                    const std::vector<int32_t>& targets, int N, int V, double T, double A, double scale) {
  Reference r{std::vector<double>(N), std::vector<double>(N), std::vector<double>(zs.size())};
  for (int n = 0; n < N; ++n) {
    const auto log_p = log_softmax(&zs[n * V], V, 1), log_ps = log_softmax(&zs[n * V], V, T);
    const auto log_pt = log_softmax(&zt[n * V], V, T);
    double kl = 0;
    for (int v = 0; v < V; ++v) kl += std::exp(log_pt[v]) * (log_pt[v] - log_ps[v]);
    r.hard[n] = -log_p[targets[n]];
    r.loss[n] = (1 - A) * r.hard[n] + A * T * T * kl;
    for (int v = 0; v < V; ++v) {
      const double onehot = v == targets[n] ? 1 : 0;
      r.dlogits[n * V + v] = scale * ((1 - A) * (std::exp(log_p[v]) - onehot) +
                                      A * T * (std::exp(log_ps[v]) - std::exp(log_pt[v])));
    }
  }
  return r;
}

// A vocabulary of two slices and a ragged third, T != 1, a teacher wider than the student; the logits kept
// (overwritten with dlogits by the backward) and computed slice by slice.
TEST(Distill, KernelMatchesTheDefinitionAcrossVocabularySlices) {
  const int N = 5, C = 8, Ct = 12, V = 2 * kVocabSlice + 37;
  const double T = 2.5, A = 0.3, scale = 0.7;
  const auto x = testing::random_vector(N * C, 1), wte = testing::random_vector(V * C, 2, 0.5);
  const auto tx = testing::random_vector(N * Ct, 3), twte = testing::random_vector(V * Ct, 4, 0.5);
  const std::vector<int32_t> targets = {0, 2047, 2048, V - 1, 777};
  const auto zs = logits_of(x, wte, N, C, V);
  const Reference ref = reference(zs, logits_of(tx, twte, N, Ct, V), targets, N, V, T, A, scale);
  std::vector<double> dx_ref(N * C, 0.0), dwte_ref(V * C, 0.0);
  for (int n = 0; n < N; ++n)
    for (int v = 0; v < V; ++v)
      for (int c = 0; c < C; ++c) {
        dx_ref[n * C + c] += ref.dlogits[n * V + v] * wte[v * C + c];
        dwte_ref[v * C + c] += ref.dlogits[n * V + v] * x[n * C + c];
      }

  for (bool kept : {true, false}) {
    SCOPED_TRACE(kept ? "logits kept" : "logits in slices");
    std::vector<double> logits(kept ? zs.size() : 0), slice(N * kVocabSlice), teacher_slice(N * kVocabSlice);
    if (kept) lm_head_logits(logits.data(), x.data(), wte.data(), N, C, V);
    const SoftTargets<double> teacher{.x = tx.data(),
                                      .wte = twte.data(),
                                      .C = Ct,
                                      .temperature = T,
                                      .weight = A,
                                      .slice = teacher_slice.data()};
    std::vector<double> losses(N), lse(N), stats(3 * N), dx(N * C, 0.0), dwte(V * C, 0.0);
    double* kept_logits = kept ? logits.data() : nullptr;
    lm_head_distill_loss(losses.data(), lse.data(), stats.data(), kept_logits, slice.data(), x.data(),
                         wte.data(), targets.data(), teacher, N, C, V);
    for (int n = 0; n < N; ++n) {
      EXPECT_NEAR(losses[n], ref.loss[n], 1e-12 * std::fabs(ref.loss[n]) + 1e-12) << "position " << n;
      EXPECT_NEAR(stats[2 * N + n], ref.hard[n], 1e-12 * ref.hard[n]) << "position " << n;
    }
    lm_head_distill_backward(dx.data(), dwte.data(), kept_logits, slice.data(), x.data(), wte.data(),
                             targets.data(), lse.data(), stats.data(), teacher, scale, N, C, V);
    if (kept) {
      for (size_t i = 0; i < logits.size(); ++i)
        ASSERT_NEAR(logits[i], ref.dlogits[i], 1e-14) << "dlogits " << i;
    }
    for (size_t i = 0; i < dx.size(); ++i) ASSERT_NEAR(dx[i], dx_ref[i], 1e-12) << "dx " << i;
    for (size_t i = 0; i < dwte.size(); ++i) ASSERT_NEAR(dwte[i], dwte_ref[i], 1e-12) << "dwte " << i;
  }
}

// The model's loss with soft targets and its gradient, by central differences, in double (the same code the
// float training runs), at a vocabulary across two slices.
TEST(Distill, ModelGradientMatchesFiniteDifferences) {
  GptConfig c = tiny();
  c.vocab = kVocabSlice + 37;
  const int B = 2, T = 4, Ct = 5, N = B * T;
  Gpt<double> model(c);
  model.init_weights(3);
  for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] *= 10;
  const auto tx = testing::random_vector(N * Ct, 5), twte = testing::random_vector(c.vocab * Ct, 6);
  std::vector<double> teacher_slice(N * kVocabSlice);
  const SoftTargets<double> teacher{.x = tx.data(),
                                    .wte = twte.data(),
                                    .C = Ct,
                                    .temperature = 3,
                                    .weight = 0.6,
                                    .slice = teacher_slice.data()};
  auto inputs = tokens(N, c.vocab, 1), targets = tokens(N, c.vocab, 2);
  targets[3] = c.vocab - 1;  // in the ragged last slice
  model.zero_grads();
  model.set_soft_targets(&teacher);
  const double loss = model.forward(inputs.data(), targets.data(), B, T);
  EXPECT_GT(loss, (1 - teacher.weight) * model.hard_loss_sum() / N + 1e-3) << "KL > 0 from a random teacher";
  model.backward(1.0 / N);
  std::vector<double> analytic(model.grads(), model.grads() + model.num_params());
  std::vector<double> params(model.params(), model.params() + model.num_params());
  auto f = [&] {
    std::copy(params.begin(), params.end(), model.params());
    model.set_soft_targets(&teacher);
    const double l = model.forward(inputs.data(), targets.data(), B, T);
    model.release_activations();
    return l;
  };
  testing::expect_gradient("params", params, analytic, f, 1e-5, 300);
}

// A teacher run on the fixture data: the same tokenizer as the students'.
std::string teacher_run(const TempDir& dir) {
  const std::string run = dir / "teacher";
  auto r = run_triad(train_args(run, "--steps 4 --eval-every 0 --seed 7"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return run;
}

TEST(Distill, WeightZeroIsPlainTrainingBitForBit) {
  TempDir dir;
  const std::string teacher = teacher_run(dir);
  auto r = run_triad(train_args(dir / "plain", "--steps 3 --eval-every 0"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_triad(
      train_args(dir / "a0", "--steps 3 --eval-every 0 --teacher " + teacher + " --distill-weight 0"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(losses(dir / "a0"), losses(dir / "plain"));
  EXPECT_EQ(sha256_file_hex(dir / "a0/checkpoints/step_000003/model.safetensors"),
            sha256_file_hex(dir / "plain/checkpoints/step_000003/model.safetensors"));

  r = run_triad(train_args(dir / "a5", "--steps 3 --eval-every 0 --teacher " + teacher));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto records = metrics(dir / "a5");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["hard_loss"], metrics(dir / "plain")[0]["loss"])
      << "step 1: the same weights and tokens";
  EXPECT_NE(records[0]["loss"], records[0]["hard_loss"]);
  EXPECT_GT(records[0]["teacher_ms"].get<double>(), 0);
  // The run records the checkpoint that taught it and its weights' hash.
  const auto options = nlohmann::json::parse(read_file(dir / "a5/run.json"))["options"];
  const std::string step = teacher + "/checkpoints/step_000004";
  EXPECT_EQ(options["teacher"], std::filesystem::absolute(step).lexically_normal().string());
  EXPECT_EQ(options["teacher_sha256"], sha256_file_hex(step + "/model.safetensors"));
}

TEST(Distill, ResumeWithATeacherIsBitExact) {
  TempDir dir;
  const std::string teacher = teacher_run(dir), run = dir / "student";
  const std::string flags =
      "--eval-every 0 --ckpt-every 2 --distill-temperature 3 --distill-weight 0.7 --teacher " + teacher;
  ASSERT_EQ(run_triad(train_args(run, "--steps 4 " + flags)).exit_code, 0);
  const std::string last = run + "/checkpoints/step_000004";
  const std::string weights = sha256_file_hex(last + "/model.safetensors");
  const auto straight = losses(run);
  std::filesystem::remove_all(last);
  auto r = run_triad("train -q --resume " + run);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(sha256_file_hex(last + "/model.safetensors"), weights);
  EXPECT_EQ(losses(run), straight);
}

TEST(Distill, ATeacherWithAnotherTokenizerIsRefusedNamingBoth) {
  TempDir dir;
  const std::string other = dir / "other-data";
  auto r = run_triad("prepare -q --input " + testing::fixture("fixture/brown_sample.jsonl") + " --out " +
                     other + " --vocab-size 350 --val-fraction 0.2 --max-tokens 64 --blocklist off");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string teacher = dir / "teacher";
  r = run_triad("train -q --data " + other + " --out " + teacher +
                " --layers 1 --d-model 16 --heads 2 --seq-len 16 --batch 2 --steps 1 --eval-every 0 "
                "--sample-prompt ''");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = run_triad(train_args(dir / "student", "--steps 1 --teacher " + teacher));
  EXPECT_THAT(r, RefusedWith("the tokenizers differ"));
  EXPECT_THAT(r.err, HasSubstr(teacher + "/tokenizer.model"));
  EXPECT_THAT(r.err, HasSubstr(testing::fixture_data() + "/manifest.json"));
  EXPECT_FALSE(std::filesystem::exists(dir / "student")) << "refused before the run directory exists";
}

TEST(Distill, RefusesWhatItDoesNotSupportYet) {
  TempDir dir;
  const std::string teacher = teacher_run(dir);
  EXPECT_THAT(run_triad(train_args(dir / "s", "--teacher " + teacher + " --fused-update")),
              RefusedWith("not supported yet"));
  EXPECT_THAT(run_triad(train_args(dir / "s", "--teacher " + teacher + " --distill-weight 1.5")),
              RefusedWith("--distill-weight"));
  EXPECT_THAT(run_triad(train_args(dir / "s", "--teacher-sha256 abc")),
              RefusedWith("only applies with --teacher"));
  // Weights other than those pinned (what a resumed run checks against the hash it recorded).
  EXPECT_THAT(run_triad(train_args(dir / "s", "--teacher " + teacher + " --teacher-sha256 abc")),
              RefusedWith("but the run was taught by abc"));
}

}  // namespace
}  // namespace triad
