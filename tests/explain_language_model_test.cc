// Explanations of a language model's next token (explain/probe.h's LanguageModelProbe) against the whole
// model's own forward, finite differences and a worked example of gradient-weighted attention.

#include <gtest/gtest.h>

#include <cmath>

#include "explain_test_util.h"
#include "test_util.h"
#include "train_test_util.h"
#include "triad/explain/attention_graph.h"
#include "triad/explain/attributions.h"
#include "triad/explain/explainer.h"
#include "triad/train/checkpoint.h"

namespace triad::testing {
namespace {

using namespace triad::explain;

class ExplainLanguageModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto r = run_triad(train_args(*dir_ / "lm", "--steps 4 --eval-every 0"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string run() { return *dir_ / "lm"; }
  static TempDir* dir_;
};
TempDir* ExplainLanguageModel::dir_ = nullptr;

// The probe applies the final LayerNorm and the tied head itself; the whole model's forward (its own
// LayerNorm, its loss) must agree on the next token's probabilities.
TEST_F(ExplainLanguageModel, ScoreIsTheModelsLogProbabilityOfItsNextToken) {
  const std::unique_ptr<Probe> probe = open_probe(run());
  EXPECT_STREQ(probe->kind(), "language model");
  const std::vector<int32_t> tokens = split_words(probe->tokenizer(), "the history of the city", 16).tokens;
  const Outcome outcome = probe->fix_outcome(tokens);

  const std::string dir = resolve_checkpoint(run());
  const CheckpointManifest manifest = read_checkpoint_manifest(dir);
  Gpt<float> whole(manifest.model);
  load_checkpoint_weights(dir, &whole);
  const int T = static_cast<int>(tokens.size()), C = manifest.model.d_model, V = manifest.model.vocab;
  std::vector<int32_t> targets(tokens.begin() + 1, tokens.end());
  targets.push_back(0);
  whole.forward(tokens.data(), targets.data(), 1, T);
  const float* h = whole.final_hidden() + static_cast<size_t>(T - 1) * C;  // after ln_f, the last position
  std::vector<double> logits(V);
  for (int v = 0; v < V; ++v) {
    for (int c = 0; c < C; ++c)
      logits[v] +=
          double(h[c]) * whole.params()[whole.layout().find("wte.weight")->offset + size_t(v) * C + c];
  }
  const int best = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  double sum = 0;
  for (double l : logits) sum += std::exp(l - logits[best]);
  EXPECT_EQ(outcome.name, "next token \"" + probe->tokenizer().decode({best}) + "\"");
  EXPECT_NEAR(outcome.probability, 1 / sum, 1e-5);
  EXPECT_NEAR(probe->logits({tokens})[0], -std::log(sum), 1e-4);
  // The loss of the whole model at the last position, with that token as the target.
  targets.back() = best;
  whole.forward(tokens.data(), targets.data(), 1, T);
  EXPECT_NEAR(probe->logits({tokens})[0], -whole.losses()[T - 1], 1e-4);
}

TEST_F(ExplainLanguageModel, GradientMatchesFiniteDifferences) {
  const std::unique_ptr<Probe> probe = open_language_model(run());
  const std::vector<int32_t> tokens = split_words(probe->tokenizer(), "the history of the city", 16).tokens;
  probe->fix_outcome(tokens);
  expect_score_gradient(*probe, tokens);
}

TEST_F(ExplainLanguageModel, EveryMethodScoresEveryWord) {
  const std::unique_ptr<Probe> probe = open_language_model(run());
  ExplainOptions options;
  for (Method m : all_methods()) options.methods.push_back(method_name(m));
  options.methods.push_back(kRuleMethod);
  options.method.ig_steps = 8;
  options.method.lime_samples = 20;
  const Explanation e = explain_text(*probe, "t", "the history of the city", options);
  ASSERT_EQ(e.methods.size(), options.methods.size());
  for (const MethodScores& m : e.methods) {
    ASSERT_EQ(m.scores.size(), e.words.size()) << m.method;
    for (double s : m.scores) EXPECT_FALSE(std::isnan(s)) << m.method;
  }
  // Occlusion is exactly p(next token) minus p(next token | the word left out).
  const MethodScores& occlusion = *std::find_if(
      e.methods.begin(), e.methods.end(), [](const MethodScores& m) { return m.method == "occlusion"; });
  std::vector<uint8_t> keep(e.words.size(), 1);
  keep[1] = 0;
  const double without = label_probabilities(*probe, e.words, 1, {keep})[0];
  EXPECT_NEAR(occlusion.scores[1], e.outcome.probability - without, 1e-6);
}

// Chefer et al.'s rule by hand: Ā = mean over heads of (∇A ⊙ A)⁺, R = I, R ← R + Ā R, minus I.
TEST(GradientWeightedRollout, WorkedExample) {
  const std::vector<std::vector<float>> A = {{1, 0, 0.4f, 0.6f}, {1, 0, 0.5f, 0.5f}};
  const std::vector<std::vector<float>> G = {{0.5f, 0, 2, -1}, {1, 0, 1, 1}};
  // Layer 0: Ā = [[.5, 0], [.8, 0]] so R = [[1.5, 0], [.8, 1]]; layer 1: Ā = [[1, 0], [.5, .5]] so
  // R = R + Ā R = [[3, 0], [1.95, 1.5]].
  const std::vector<double> R = gradient_weighted_rollout(A, G, 1, 2);
  const std::vector<double> expected = {2, 0, 1.95, 0.5};
  for (size_t k = 0; k < 4; ++k) EXPECT_NEAR(R[k], expected[k], 1e-6) << k;
  // Toward −z only the negative products count: layer 0 alone keeps 0.6 at [1, 1].
  const std::vector<double> against = gradient_weighted_rollout({A[0]}, {G[0]}, 1, 2, -1);
  const std::vector<double> expected_against = {0, 0, 0, 0.6};
  for (size_t k = 0; k < 4; ++k) EXPECT_NEAR(against[k], expected_against[k], 1e-6) << k;
  // A second head with no gradient halves the mean.
  std::vector<float> a2 = A[0], g2 = G[0];
  a2.insert(a2.end(), A[0].begin(), A[0].end());
  g2.insert(g2.end(), 4, 0.0f);
  const std::vector<double> halved = gradient_weighted_rollout({a2}, {g2}, 2, 2);
  EXPECT_NEAR(halved[2], 0.4, 1e-6);
  EXPECT_NEAR(halved[0], 0.25, 1e-6);
}

}  // namespace
}  // namespace triad::testing
