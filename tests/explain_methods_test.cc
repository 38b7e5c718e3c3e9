// The explanation methods on a real (tiny) classifier run, each against an independent computation: the
// embedding gradient against finite differences, integrated gradients against completeness, KernelSHAP
// against brute-force Shapley values, LIME's ridge against scikit-learn; the words and the rule set by hand.

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numeric>

#include "explain_test_util.h"
#include "headless_chromium.h"
#include "test_util.h"
#include "train_test_util.h"
#include "triad/core/file_io.h"
#include "triad/core/rng.h"
#include "triad/core/sha256.h"
#include "triad/explain/attributions.h"
#include "triad/explain/regression.h"
#include "triad/explain/rules.h"

namespace triad::testing {
namespace {

using namespace triad::explain;

class Explain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto r = run_triad(train_args(*dir_ / "lm", "--steps 4 --eval-every 0"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_sentences(*dir_ / "train.csv", 96, 0);
    write_sentences(*dir_ / "val.csv", 48, 1);
    r = run_triad("classify -q --init " + *dir_ / "lm" + " --train " + *dir_ / "train.csv" + " --val " +
                  *dir_ / "val.csv" + " --out " + *dir_ / "cls" +
                  " --steps 60 --batch 16 --lr 3e-3 --warmup 5 --seq-len 16 --eval-every 0 --threads 2");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string run() { return *dir_ / "cls"; }
  static TempDir* dir_;
};
TempDir* Explain::dir_ = nullptr;

TEST_F(Explain, WordsArePiecesOfTheWholeText) {
  const std::unique_ptr<Probe> opened = open_classifier(run());
  Probe& probe = *opened;
  const std::string text = "the muslim is wonderful !";
  const Words words = split_words(probe.tokenizer(), text, 64);
  std::vector<int> whole;
  probe.tokenizer().encode(text, &whole);
  EXPECT_EQ(std::vector<int>(words.tokens.begin(), words.tokens.end()), whole);
  ASSERT_EQ(words.size(), 5u);
  EXPECT_EQ(words.not_a_reason, (std::vector<uint8_t>{0, 0, 0, 0, 1}));
  EXPECT_EQ(normalize_word("Idiot!"), "idiot");
  const Words cut = split_words(probe.tokenizer(), text, words.first_token[3]);
  EXPECT_EQ(cut.size(), 3u) << "whole words only";
  EXPECT_EQ(cut.truncated, 2u);
}

TEST_F(Explain, EmbeddingGradientMatchesFiniteDifferences) {
  const std::unique_ptr<Probe> probe = open_classifier(run());
  expect_score_gradient(*probe, split_words(probe->tokenizer(), "the woman is stupid", 16).tokens);
}

// Completeness: the scores add up to z(input) - z(baseline). On this model the straight path crosses sharp
// transitions (the logit jumps by 0.3 within 5 % of the path), so it takes hundreds of midpoint steps.
TEST_F(Explain, IntegratedGradientsAddUpToTheLogitChange) {
  const std::unique_ptr<Probe> opened = open_classifier(run());
  Probe& probe = *opened;
  const Words words = split_words(probe.tokenizer(), "the friend is evil", 16);
  std::vector<double> z;
  std::vector<float> unused;
  const std::vector<float> e = probe.token_embeddings(words.tokens);
  probe.logits_and_gradients(words.tokens, e, 1, &z, &unused);
  const double at_input = z[0];
  probe.logits_and_gradients(words.tokens, std::vector<float>(e.size(), 0.0f), 1, &z, &unused);
  const double change = at_input - z[0];
  const MethodOptions options{.ig_steps = 512, .ig_batch = 64};
  const std::vector<double> ig = explain_words(probe, words, Method::kIntegratedGradients, 1, options);
  const double sum = std::accumulate(ig.begin(), ig.end(), 0.0);
  EXPECT_NEAR(sum, change, 0.002 * std::abs(change) + 1e-4);
  const std::vector<double> against = explain_words(probe, words, Method::kIntegratedGradients, 0, options);
  EXPECT_NEAR(std::accumulate(against.begin(), against.end(), 0.0), -sum, 1e-6) << "signed by the label";
}

// Gauss-Legendre with n points integrates x^k exactly up to k = 2n - 1; the midpoint rule only up to k = 1.
TEST(ExplainIntegration, GaussLegendreNodesAreExactForPolynomials) {
  for (int n : {4, 8, 16, 32, 64}) {
    const auto nodes = path_nodes(n, true);
    ASSERT_EQ(static_cast<int>(nodes.size()), n);
    for (int k = 0; k < 2 * n; k += 3) {
      double sum = 0;
      for (const auto& [x, w] : nodes) sum += w * std::pow(x, k);
      EXPECT_NEAR(sum, 1.0 / (k + 1), 1e-12) << n << " points, x^" << k;
    }
  }
  const auto midpoint = path_nodes(4, false);
  double square = 0;
  for (const auto& [x, w] : midpoint) square += w * x * x;
  EXPECT_GT(std::abs(square - 1.0 / 3), 1e-3) << "the control: the midpoint rule is not exact for x^2";
}

TEST_F(Explain, KernelShapWithEveryCoalitionIsTheShapleyValue) {
  const std::unique_ptr<Probe> opened = open_classifier(run());
  Probe& probe = *opened;
  const Words words = split_words(probe.tokenizer(), "the honest man is kind", 16);
  const int M = static_cast<int>(words.size());
  ASSERT_EQ(M, 5);
  std::vector<std::vector<uint8_t>> masks;
  for (int bits = 0; bits < (1 << M); ++bits) {
    std::vector<uint8_t> keep(M);
    for (int j = 0; j < M; ++j) keep[j] = (bits >> j) & 1;
    masks.push_back(keep);
  }
  const std::vector<double> f = label_probabilities(probe, words, 1, masks);  // f[bits]
  std::vector<double> factorial(M + 1, 1.0);
  for (int k = 1; k <= M; ++k) factorial[k] = factorial[k - 1] * k;
  const std::vector<double> phi = explain_words(probe, words, Method::kShap, 1, {.shap_samples = 64});
  for (int i = 0; i < M; ++i) {
    double exact = 0;
    for (int bits = 0; bits < (1 << M); ++bits) {
      if (bits & (1 << i)) continue;
      const int size = __builtin_popcount(bits);
      exact += factorial[size] * factorial[M - size - 1] / factorial[M] * (f[bits | (1 << i)] - f[bits]);
    }
    EXPECT_NEAR(phi[i], exact, 1e-6) << "word " << i;
  }
  // Occlusion is the drop in p(label) when one word goes.
  const std::vector<double> occ = explain_words(probe, words, Method::kOcclusion, 1);
  for (int i = 0; i < M; ++i)
    EXPECT_NEAR(occ[i], f[(1 << M) - 1] - f[((1 << M) - 1) & ~(1 << i)], 1e-6)
        << "as one batch or another: the same up to rounding";
}

// The command: every method on two texts, the rule set mined from the training texts, JSON lines that
// match the audit log's hashes, and the HTML page as Chromium reads it.
TEST_F(Explain, CommandWritesJsonHtmlAndAuditEntries) {
  const std::string rules = *dir_ / "rules.json", json = *dir_ / "e.jsonl", html = *dir_ / "e.html";
  auto r = run_triad("explain --model " + run() + " --mine " + *dir_ / "train.csv" + " --rules-out " + rules +
                     " --min-support 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("fidelity to the classifier on held-out texts"));
  const nlohmann::json mined = read_json_file(rules);
  ASSERT_FALSE(mined["rules"].empty());
  r = run_triad("explain --model " + run() +
                " --text 'the woman is evil' --text 'the man is kind !' --methods all" + " --rules " + rules +
                " --faithfulness --json " + json + " --html " + html + " --audit");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("IF \""));
  const auto lines = read_jsonl(json);
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& e : lines) {
    ASSERT_EQ(e["methods"].size(), 10u);
    for (const auto& [name, m] : e["methods"].items()) {
      EXPECT_EQ(m["scores"].size(), e["words"].size()) << name;
      EXPECT_TRUE(m.contains("comprehensiveness")) << name;
    }
  }
  EXPECT_TRUE(lines[1]["methods"]["lime"]["scores"][4].is_null()) << "'!' is no reason";
  // The last block's attention head by head; their mean is the head-mean scores.
  const nlohmann::json& attention = lines[1]["methods"]["attention"];
  ASSERT_EQ(attention["heads"].size(), 2u);
  for (size_t w = 0; w < 4; ++w) {
    const double mean = (attention["heads"][0][w].get<double>() + attention["heads"][1][w].get<double>()) / 2;
    EXPECT_NEAR(attention["scores"][w].get<double>(), mean, 1e-9) << w;
  }
  // Each explanation's hash is in the run's audit log, and the log still verifies.
  std::set<std::string> logged;
  for (const auto& entry : read_jsonl(run() + "/audit/log.jsonl")) {
    if (entry["kind"] == "inference") logged.insert(entry["payload"]["output_sha256"].get<std::string>());
  }
  for (const auto& e : lines) EXPECT_TRUE(logged.count(sha256_hex(e.dump()))) << e["id"];
  EXPECT_EQ(run_triad("audit verify " + run()).exit_code, 0);
  if (HeadlessChromium::binary().empty())
    GTEST_SKIP() << "chromium is not installed (scripts/setup installs it)";
  HeadlessChromium browser(*dir_ / "chromium-profile");
  const HeadlessChromium::Page page = browser.load("file://" + html);
  size_t spans = 0;
  for (size_t at = page.dom.find("data-method="); at != std::string::npos;
       at = page.dom.find("data-method=", at + 1))
    ++spans;
  EXPECT_EQ(spans, 10u * (4 + 5)) << "a word element per method and word";
  EXPECT_THAT(page.dom, ::testing::HasSubstr(">evil</span>"));
  EXPECT_THAT(page.dom, ::testing::HasSubstr("<table id=\"rules\">"));
  for (const std::string& request : page.requests) EXPECT_EQ(request, "file://" + html);
  EXPECT_EQ(page.screenshot_png.substr(1, 3), "PNG");
}

TEST_F(Explain, RefusesWhatItCannotExplain) {
  EXPECT_THAT(run_triad("explain --model " + run() + " --text x --methods attention,magic"),
              RefusedWith("unknown explanation method 'magic'"));
  EXPECT_THAT(run_triad("explain --model " + run()), RefusedWith("nothing to explain"));
  EXPECT_THAT(run_triad("explain --model " + run() + " --mine " + *dir_ / "train.csv"),
              RefusedWith("--rules-out"));
  EXPECT_THAT(run_triad("explain --model " + run() + " --text x --ig-gauss --ig-steps 7 --methods ig"),
              RefusedWith("--ig-steps 7"));
  EXPECT_THAT(
      run_triad("explain --model " + *dir_ / "lm" + " --mine " + *dir_ / "train.csv" + " --rules-out r"),
      RefusedWith("rules are mined for a classifier's labels"));
  EXPECT_THAT(run_triad("explain --model " + dir_->path() + " --text x"),
              RefusedWith(dir_->path() + " is neither a classifier run"));
}

TEST(ExplainRegression, WeightedRidgeMatchesScikitLearn) {
  if (run_command("/usr/bin/python3 -c 'import sklearn, numpy'").exit_code != 0)
    GTEST_SKIP() << "/usr/bin/python3 with sklearn and numpy is missing (scripts/setup)";
  const int n = 40, d = 6;
  Rng rng(11);
  std::vector<double> X(n * d), y(n), w(n);
  for (double& x : X) x = rng.uniform() < 0.5 ? 0.0 : 1.0;
  for (int i = 0; i < n; ++i) {
    y[i] = rng.uniform();
    w[i] = 0.1 + rng.uniform();
  }
  const RidgeFit fit = weighted_ridge(X, y, w, n, d, 1.0);
  TempDir dir;
  std::ofstream data(dir / "data.txt");
  data.precision(17);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) data << X[i * d + j] << " ";
    data << y[i] << " " << w[i] << "\n";
  }
  data.close();
  const auto r = run_command(
      "/usr/bin/python3 -c 'import numpy as np; from sklearn.linear_model import Ridge; a = np.loadtxt(\"" +
      dir / "data.txt" +
      "\"); m = Ridge(alpha=1.0).fit(a[:, :6], a[:, 6], sample_weight=a[:, 7]); "
      "print(\" \".join(repr(v) for v in list(m.coef_) + [m.intercept_]))'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  for (int j = 0; j < d; ++j) {
    double c = 0;
    in >> c;
    EXPECT_NEAR(fit.coef[j], c, 1e-9) << j;
  }
  double intercept = 0;
  in >> intercept;
  EXPECT_NEAR(fit.intercept, intercept, 1e-9);
}

TEST(ExplainRules, MinedByHandAndMeasuredOnHeldOutTexts) {
  // "bad" says 1 on 4 of 4 texts, "good" 0 on 3 of 3, "the" says 1 on 3 of 6.
  std::vector<std::set<std::string>> texts = {{"the", "bad"},  {"the", "bad"},  {"bad"},  {"the", "bad"},
                                              {"the", "good"}, {"the", "good"}, {"good"}, {"the"}};
  std::vector<int> labels = {1, 1, 1, 1, 0, 0, 0, 0};
  const RuleSet rules = mine_rules(texts, labels, {.min_support = 3, .min_precision = 0.8});
  ASSERT_EQ(rules.rules.size(), 2u);
  EXPECT_EQ(rules.rules[0].word, "bad") << "precision 1 and support 4 before support 3";
  EXPECT_EQ(rules.rules[0].label, 1);
  EXPECT_EQ(rules.rules[1].word, "good");
  EXPECT_DOUBLE_EQ(rules.base_rate[1], 0.5);
  EXPECT_DOUBLE_EQ(rules.importance("bad", 1, {"the", "bad"}), std::log(1.0 / 0.5));
  EXPECT_DOUBLE_EQ(rules.importance("bad", 0, {"the", "bad"}), -std::log(2.0));
  EXPECT_DOUBLE_EQ(rules.importance("the", 1, {"the", "bad"}), 0.0);
  RuleSet measured = rules;
  evaluate_rules(&measured, {{"bad", "good"}, {"good"}, {"the"}, {"bad"}}, {0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(measured.fidelity, 0.5) << "predicts 1, 0, 0 (default), 1 against 0, 0, 1, 1";
  EXPECT_DOUBLE_EQ(measured.rules[0].held_out_precision, 0.5);
  EXPECT_DOUBLE_EQ(measured.rules[0].held_out_coverage, 0.5);
  const RuleSet back = RuleSet::from_json(measured.to_json(), "rules.json");
  EXPECT_EQ(back.rules.size(), 2u);
  EXPECT_DOUBLE_EQ(back.fidelity, 0.5);
  // Eq. 15: ψ = ρ + attention, softmax over the words that can be reasons.
  const std::vector<double> psi = rule_scores(rules, {"the", "bad", ""}, {0.5, 0.2, 0.3}, {0, 0, 1}, 1);
  EXPECT_DOUBLE_EQ(psi[1], std::log(2.0) + 0.2);
  const std::vector<double> R = relevance(psi);
  EXPECT_NEAR(R[0] + R[1], 1.0, 1e-12);
  EXPECT_EQ(R[2], 0.0);
  EXPECT_NEAR(R[1] / R[0], std::exp(psi[1] - psi[0]), 1e-12);
}

// "not" and "good" each say 0 on half their texts, together on all of them; "awful" and "movie" are
// exact alone, so their pair gains nothing and is no rule.
TEST(ExplainRules, ConjunctionsOnlyWhenMorePreciseThanTheirWords) {
  std::vector<std::set<std::string>> texts;
  std::vector<int> labels;
  auto add = [&](std::set<std::string> words, int label, int times) {
    for (int i = 0; i < times; ++i) {
      texts.push_back(words);
      labels.push_back(label);
    }
  };
  add({"not", "good"}, 0, 3);
  add({"good"}, 1, 3);
  add({"not", "bad"}, 1, 2);
  add({"not"}, 1, 1);
  add({"awful", "movie"}, 0, 3);
  add({"fine"}, 1, 1);
  MiningOptions options{.min_support = 3, .min_precision = 0.8};
  EXPECT_EQ(mine_rules(texts, labels, options).rules.size(), 2u) << "awful, movie";
  options.conjunctions = true;
  const RuleSet rules = mine_rules(texts, labels, options);
  ASSERT_EQ(rules.rules.size(), 3u);
  EXPECT_EQ(rules.rules[1].condition(), "\"good\" AND \"not\"");
  EXPECT_EQ(rules.rules[1].label, 0);
  EXPECT_EQ(rules.rules[1].support, 3);
  EXPECT_EQ(rules.default_label, 1);
  EXPECT_EQ(rules.predict({"not", "good", "very"}), 0);
  EXPECT_EQ(rules.predict({"good"}), 1) << "the conjunction does not fire on one of its words";
  EXPECT_DOUBLE_EQ(rules.importance("good", 0, {"good", "not"}), std::log(1.0 / (6.0 / 13)));
  EXPECT_DOUBLE_EQ(rules.importance("good", 0, {"good"}), 0.0);
  RuleSet measured = rules;
  evaluate_rules(&measured, {{"not", "good"}, {"good"}, {"not"}}, {0, 1, 0});
  EXPECT_EQ(measured.rules[1].held_out_support, 1);
  EXPECT_DOUBLE_EQ(measured.fidelity, 2.0 / 3);
  const RuleSet back = RuleSet::from_json(rules.to_json(), "rules.json");
  EXPECT_EQ(back.rules[1].also, "not");
}

}  // namespace
}  // namespace triad::testing
