// Fine-tuning a classifier on the trunk (`triad classify`, `triad predict`) and the mitigations' rules
// (fairness/debias.h), each against an independent computation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>

#include "test_util.h"
#include "train_test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/fairness/debias.h"

namespace triad::fairness {
namespace {

using triad::testing::metrics;
using triad::testing::read_jsonl;
using triad::testing::run_triad;
using triad::testing::TempDir;
using triad::testing::write_sentences;

std::vector<Subgroup> two_attributes() {
  // 8 examples: religion groups a (0-2), b (3-4); gender group f (2, 5); none otherwise.
  return {{"a", "religion", {1, 1, 1, 0, 0, 0, 0, 0}},
          {"b", "religion", {0, 0, 0, 1, 1, 0, 0, 0}},
          {"f", "gender", {0, 0, 1, 0, 0, 1, 0, 0}}};
}

// Reweighing makes identity and label independent under the weights: Σ_{s,y} w / N = P(s) P(y), checked
// for every (identity, label) cell against counts made here.
TEST(Reweighing, MakesIdentityAndLabelIndependent) {
  const std::vector<int> labels = {1, 1, 0, 1, 0, 0, 1, 0};
  const auto groups = two_attributes();
  const std::vector<double> w = reweighing_weights(labels, groups, {"religion", "gender"});
  const std::vector<std::string> identity = {"a", "a", "a+f", "b", "b", "f", "", ""};
  std::map<std::string, double> n_s, weight_sy;
  double n_y[2] = {0, 0};
  for (size_t i = 0; i < labels.size(); ++i) {
    n_s[identity[i]] += 1;
    n_y[labels[i]] += 1;
    weight_sy[identity[i] + "/" + std::to_string(labels[i])] += w[i];
  }
  const double N = labels.size();
  for (const auto& [cell, weight] : weight_sy) {
    const std::string s = cell.substr(0, cell.find('/'));
    const int y = cell.back() - '0';
    EXPECT_NEAR(weight / N, n_s[s] / N * n_y[y] / N, 1e-12) << cell;
  }
  // Group a: 2 of its 2 examples positive (both identity "a") -> W = 2 * 4 / (8 * 2) = 0.5.
  EXPECT_NEAR(w[0], 0.5, 1e-12);
  // Only religion protected: example 2 is "a" too, and example 5 has no identity.
  const std::vector<double> r = reweighing_weights(labels, groups, {"religion"});
  EXPECT_NEAR(r[2], 3.0 * 4 / (8 * 1), 1e-12);  // a has 3 examples, 1 of them negative
}

TEST(AdversaryTargets, FirstGroupOrNone) {
  const AttributeTargets t = attribute_targets(two_attributes(), "religion", 8);
  EXPECT_THAT(t.groups, ::testing::ElementsAre("a", "b"));
  EXPECT_EQ(t.classes(), 3);
  EXPECT_THAT(t.target, ::testing::ElementsAre(0, 0, 0, 1, 1, 2, 2, 2));
  EXPECT_THAT(protected_attributes(two_attributes(), {}), ::testing::ElementsAre("religion", "gender"));
  EXPECT_THROW(protected_attributes(two_attributes(), {"age"}), triad::Error);
}

// The features' backward against central differences of Σ dx · features as a function of the logits z
// and of the pooled values, for every goal and input: each feature column reaches the right gradient.
class AdversaryFeatures : public ::testing::TestWithParam<std::tuple<AdversaryGoal, AdversaryInput>> {};

TEST_P(AdversaryFeatures, BackwardMatchesFiniteDifferences) {
  const auto [goal, input] = GetParam();
  const int N = 3, C = 2, width = adversary_inputs(goal, input, C);
  const std::vector<int> y = {1, 0, 1};
  std::vector<float> z = {-1.5f, 0.3f, 2.0f}, pooled = {0.4f, -0.8f, 1.2f, 0.1f, -0.6f, 0.9f};
  std::vector<float> dx(static_cast<size_t>(N) * width);
  for (size_t j = 0; j < dx.size(); ++j) dx[j] = std::sin(1.7f * static_cast<float>(j) + 0.3f);
  auto sigmoid = [](const std::vector<float>& logits) {
    std::vector<float> s(logits.size());
    for (size_t i = 0; i < s.size(); ++i) s[i] = 1 / (1 + std::exp(-logits[i]));
    return s;
  };
  auto f = [&] {  // in double: the differences below are of float features, summed here
    const std::vector<float> x = adversary_features(goal, input, sigmoid(z), y, pooled.data(), C);
    EXPECT_EQ(x.size(), dx.size());
    double sum = 0;
    for (size_t j = 0; j < x.size(); ++j) sum += static_cast<double>(dx[j]) * x[j];
    return sum;
  };
  std::vector<float> dlogit(N, 0.25f), dpool(pooled.size(), -0.5f);  // backward accumulates onto these
  adversary_feature_backward(goal, input, dx, sigmoid(z), y, C, &dlogit, &dpool);
  auto numeric = [&](float* v) {
    const float kept = *v, h = 1e-2f;
    *v = kept + h;
    const double up = f();
    *v = kept - h;
    const double down = f();
    *v = kept;
    return (up - down) / (2 * h);
  };
  for (int i = 0; i < N; ++i) EXPECT_NEAR(dlogit[i] - 0.25f, numeric(&z[i]), 2e-3) << "logit " << i;
  for (size_t j = 0; j < pooled.size(); ++j) {
    EXPECT_NEAR(dpool[j] + 0.5f, numeric(&pooled[j]), 2e-3) << "pooled " << j;
  }
  // What each input kind reads: the pooled values only when it says so, the score only when it says so.
  const bool reads_pool = input != AdversaryInput::kOutput, reads_score = input != AdversaryInput::kPooled;
  EXPECT_EQ(dpool[0] != -0.5f, reads_pool);
  EXPECT_EQ(dlogit[1] != 0.25f, reads_score);
}

INSTANTIATE_TEST_SUITE_P(EveryInput, AdversaryFeatures,
                         ::testing::Combine(::testing::Values(AdversaryGoal::kParity, AdversaryGoal::kOdds),
                                            ::testing::Values(AdversaryInput::kOutput,
                                                              AdversaryInput::kPooled,
                                                              AdversaryInput::kBoth)));

TEST(Projection, RemovesTheComponentThatHelpsTheAdversary) {
  const std::vector<float> adv = {1, 2, -1, 0.5f};
  std::vector<float> task = {0.3f, -1, 2, 4};
  const std::vector<float> before = task;
  project_out(&task, adv, 0.0);
  double dot = 0, adv2 = 0;
  for (size_t i = 0; i < adv.size(); ++i) dot += task[i] * adv[i], adv2 += adv[i] * adv[i];
  EXPECT_NEAR(dot, 0, 1e-5) << "lambda 0: orthogonal to the adversary's gradient";
  task = before;
  project_out(&task, adv, 0.5);
  dot = 0;
  for (size_t i = 0; i < adv.size(); ++i) dot += task[i] * adv[i];
  EXPECT_NEAR(dot, -0.5 * adv2, 1e-5) << "then lambda times the reversed gradient";
  EXPECT_DOUBLE_EQ(lambda_at(5, 2.0, 10), 1.0);
  EXPECT_DOUBLE_EQ(lambda_at(12, 2.0, 10), 2.0);
}

// The rows of the Markdown table whose header line starts with `header`, each as its trimmed cells.
std::vector<std::vector<std::string>> markdown_rows(const std::string& md, const std::string& header) {
  std::vector<std::vector<std::string>> rows;
  const size_t at = md.find("\n" + header);
  if (at == std::string::npos) return rows;
  std::istringstream lines(md.substr(at + 1));
  std::string line;
  std::getline(lines, line);  // the header
  std::getline(lines, line);  // | --- | --- |
  while (std::getline(lines, line) && line.starts_with("| ")) {
    std::istringstream parts(line.substr(1));
    std::vector<std::string> cells;
    for (std::string c; std::getline(parts, c, '|');) {
      c.erase(0, c.find_first_not_of(' '));
      c.erase(c.find_last_not_of(' ') + 1);
      cells.push_back(c);
    }
    rows.push_back(std::move(cells));
  }
  return rows;
}

// A card's cell against the fairness report's value: "—" where the report has none (null).
void expect_card_value(const std::string& cell, const nlohmann::json& value) {
  if (value.is_null()) {
    EXPECT_EQ(cell, "—");
  } else {
    EXPECT_NEAR(std::stod(cell), value.get<double>(), 1e-6);
  }
}

class Classify : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    lm_ = new TempDir();
    auto r = run_triad(triad::testing::train_args(lm_->path() + "/lm", "--steps 4 --eval-every 0"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete lm_; }
  std::string lm() const { return lm_->path() + "/lm"; }
  void write_terms(const std::string& path) {
    std::ofstream(path) << "[religion]\nmuslim = [\"muslim\"]\nchristian = [\"christian\"]\n"
                           "[gender]\nfemale = [\"woman\"]\nmale = [\"man\"]\n";
  }
  static TempDir* lm_;
  TempDir dir_;
};
TempDir* Classify::lm_ = nullptr;

TEST_F(Classify, LearnsTheLabelAndPredicts) {
  write_sentences(dir_ / "train.csv", 96, 0);
  write_sentences(dir_ / "val.csv", 48, 1);
  write_terms(dir_ / "terms.toml");
  const std::string run = dir_ / "cls";
  auto r = run_triad("classify -q --init " + lm() + " --train " + (dir_ / "train.csv") + " --val " +
                     (dir_ / "val.csv") + " --identity-terms " + (dir_ / "terms.toml") + " --out " + run +
                     " --steps 60 --batch 16 --lr 3e-3 --warmup 5 --seq-len 16 --eval-every 30 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<double> task_losses, accuracy;
  for (const auto& m : metrics(run)) {
    if (m.contains("loss")) task_losses.push_back(m["loss"]);
    if (m.contains("val_accuracy")) accuracy.push_back(m["val_accuracy"]);
  }
  ASSERT_EQ(task_losses.size(), 60u);
  ASSERT_EQ(accuracy.size(), 2u);
  auto mean = [](auto begin, auto end) { return std::accumulate(begin, end, 0.0) / (end - begin); };
  EXPECT_LT(mean(task_losses.end() - 10, task_losses.end()),
            0.6 * mean(task_losses.begin(), task_losses.begin() + 10));
  EXPECT_GE(accuracy.back(), 0.9) << "the adjective decides the label";
  r = run_triad("predict --model " + run + " --data " + (dir_ / "val.csv") + " --identity-terms " +
                (dir_ / "terms.toml") + " --out " + (dir_ / "p.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto predictions = read_jsonl(dir_ / "p.jsonl");
  ASSERT_EQ(predictions.size(), 48u);
  int correct = 0;
  for (const auto& p : predictions)
    correct += (p["score"].get<double>() >= 0.5) == (p["label"].get<int>() == 1);
  EXPECT_NEAR(correct / 48.0, accuracy.back(), 1e-9) << "predict scores as the last evaluation did";
  EXPECT_EQ(run_triad("audit verify " + run).exit_code, 0);
  // The model card's per-group analyses from the last evaluation (step 60, of the saved classifier): a row
  // per protected attribute, then one per group, each number equal to the fairness report of predict's
  // scores.
  r = run_triad("fairness " + (dir_ / "p.jsonl") + " --json --bootstrap 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json report = nlohmann::json::parse(r.out);
  r = run_triad("audit card " + run + " --out -");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::HasSubstr("at the last evaluation (step 60;"));
  const auto attributes = markdown_rows(r.out, "| attribute | subgroup AUC gap | BPSN AUC gap |");
  ASSERT_EQ(attributes.size(), 2u);
  for (const auto& a : report["attributes"]) {
    auto row = std::find_if(attributes.begin(), attributes.end(),
                            [&](const auto& cells) { return cells[0] == a["attribute"]; });
    ASSERT_NE(row, attributes.end()) << a["attribute"];
    ASSERT_EQ(row->size(), 7u);
    const char* keys[] = {"subgroup_auc_gap",
                          "bpsn_auc_gap",
                          "bnsp_auc_gap",
                          "demographic_parity_difference",
                          "equal_opportunity_difference",
                          "equalized_odds"};
    for (size_t k = 0; k < 6; ++k) {
      SCOPED_TRACE(keys[k]);
      expect_card_value((*row)[k + 1], a[keys[k]]["value"]);
    }
  }
  const auto groups = markdown_rows(r.out, "| attribute | group | rows |");
  ASSERT_EQ(groups.size(), 4u);
  ASSERT_EQ(report["groups"].size(), 4u);
  for (const auto& g : report["groups"]) {
    SCOPED_TRACE(g["attribute"].get<std::string>() + "/" + g["group"].get<std::string>());
    auto row = std::find_if(groups.begin(), groups.end(), [&](const auto& cells) {
      return cells[0] == g["attribute"] && cells[1] == g["group"];
    });
    ASSERT_NE(row, groups.end());
    ASSERT_EQ(row->size(), 9u);
    EXPECT_EQ((*row)[2], std::to_string(g["n"].get<int>()));
    const char* keys[] = {"subgroup_auc", "bpsn_auc", "bnsp_auc", "tpr", "fpr", "ece"};
    for (size_t k = 0; k < 6; ++k) {
      SCOPED_TRACE(keys[k]);
      expect_card_value((*row)[k + 3], g[keys[k]]["value"]);
    }
  }
  EXPECT_THAT(r.out, ::testing::HasSubstr("| religion |"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("| gender |"));
  EXPECT_THAT(r.out, ::testing::HasSubstr("fair_overall_auc"));
  EXPECT_THAT(r.out, ::testing::Not(::testing::HasSubstr("fair_dpd_religion |")))
      << "not a column of the main table";
}

TEST_F(Classify, EveryMitigationRuns) {
  write_sentences(dir_ / "train.csv", 48, 0);
  write_terms(dir_ / "terms.toml");
  for (const std::string flags :
       {"--reweigh --adversary parity", "--adversary odds --debias-update projection",
        "--adversary odds --adversary-input pooled --lambda-warmup 3",
        "--adversary parity --adversary-input both"}) {
    SCOPED_TRACE(flags);
    const std::string run = dir_ / "m";
    auto r = run_triad("classify -q --force --init " + lm() + " --train " + (dir_ / "train.csv") +
                       " --identity-terms " + (dir_ / "terms.toml") + " --out " + run +
                       " --steps 6 --batch 8 --seq-len 16 --threads 2 " + flags);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto last = metrics(run).back();
    EXPECT_TRUE(last.contains("adv_loss_religion") && last.contains("adv_loss_gender")) << last.dump();
    if (flags.find("projection") != std::string::npos) {
      EXPECT_TRUE(last.contains("task_adv_cosine"));
    }
  }
}

// The fairness metrics of each evaluation reach the audit log and the policy rules: a rule on a subgroup
// AUC gap halts the run at the evaluation where it has held twice, and the audit log says so with the
// values metrics.jsonl has; a rule reading a metric the run never reports is refused before anything is
// written.
TEST_F(Classify, PolicyRulesActOnTheFairnessMetrics) {
  write_sentences(dir_ / "train.csv", 48, 0);
  write_sentences(dir_ / "val.csv", 32, 1);
  write_terms(dir_ / "terms.toml");
  const std::string flags = " --train " + (dir_ / "train.csv") + " --val " + (dir_ / "val.csv") +
                            " --identity-terms " + (dir_ / "terms.toml") +
                            " --steps 10 --batch 8 --seq-len 16 --eval-every 2 --threads 2 --adversary odds";
  std::ofstream(dir_ / "typo.toml")
      << "[[rule]]\nname = \"gap\"\nwhen = \"fair_subgroup_auc_gap_gendr > 0\"\n"
         "action = \"halt\"\n";
  EXPECT_THAT(run_triad("classify -q --init " + lm() + flags + " --out " + (dir_ / "x") + " --policy " +
                        (dir_ / "typo.toml")),
              triad::testing::RefusedWith("did you mean fair_subgroup_auc_gap_gender?"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x")) << "nothing written for a refused policy";

  // The paper's convergence watch (never holding 3 times here: 2 evaluations), an alert on a step metric
  // that never holds, a review on the first evaluation, a halt on the second.
  std::ofstream(dir_ / "policy.toml")
      << "[[rule]]\nname = \"converged\"\nwhen = \"abs(fair_overall_auc - prev(fair_overall_auc)) < 0.005 "
         "for 3 "
         "evals\"\naction = \"alert\"\n\n[[rule]]\nname = \"adv\"\nwhen = \"adv_loss_religion < 0\"\n"
         "action = \"alert\"\n\n[[rule]]\nname = \"look\"\nwhen = \"fair_bpsn_gap_religion >= 0\"\n"
         "action = \"review\"\n\n[[rule]]\nname = \"gap\"\nwhen = \"fair_subgroup_auc_gap_gender >= 0 for 2 "
         "evals\"\naction = \"halt\"\n";
  const std::string run = dir_ / "cls";
  auto r = run_triad("classify -q --init " + lm() + flags + " --out " + run + " --policy " +
                     (dir_ / "policy.toml"));
  ASSERT_EQ(r.exit_code, 3) << r.err;
  std::vector<nlohmann::json> evals, decisions, ends;
  for (const auto& e : read_jsonl(run + "/audit/log.jsonl")) {
    if (e["kind"] == "eval") evals.push_back(e["payload"]);
    if (e["kind"] == "policy_decision") decisions.push_back(e["payload"]);
    if (e["kind"] == "run_end") ends.push_back(e["payload"]);
  }
  ASSERT_EQ(evals.size(), 2u) << "evaluations at steps 2 and 4, none repeated after the halt";
  EXPECT_EQ(evals[1]["step"], 4);
  ASSERT_EQ(decisions.size(), 2u);
  EXPECT_EQ(decisions[0]["rule"], "look");
  EXPECT_EQ(decisions[0]["step"], 2);
  EXPECT_EQ(decisions[1]["rule"], "gap");
  EXPECT_EQ(decisions[1]["action"], "halt");
  EXPECT_EQ(decisions[1]["step"], 4);
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["status"], "halted");
  EXPECT_EQ(ends[0]["review"], true);
  const auto marker = nlohmann::json::parse(read_file(run + "/REVIEW_REQUIRED"));
  ASSERT_EQ(marker["reasons"].size(), 1u);
  EXPECT_EQ(marker["reasons"][0]["rule"], "look");
  EXPECT_EQ(marker["reasons"][0]["step"], 2);
  std::vector<nlohmann::json> logged;
  for (const auto& m : metrics(run))
    if (m.contains("fair_subgroup_auc_gap_gender")) logged.push_back(m);
  ASSERT_EQ(logged.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    for (const char* name : {"fair_overall_auc", "fair_subgroup_auc_gap_gender", "fair_bpsn_gap_religion"}) {
      EXPECT_EQ(evals[k]["metrics"][name], logged[k][name]) << name << " at evaluation " << k;
    }
  }
  EXPECT_EQ(run_triad("audit verify " + run).exit_code, 0);
}

// A fine-tune is a function of its inputs and --threads: the same flags into another --out (another heap
// layout, other path lengths) give the same weights and scores byte for byte. Another thread count sums
// LayerNorm's gradients in other partial sums (kernels/layernorm.cc), so only near-equal scores. The
// adversaries and reweighing are on, so their seeded initialisation is covered too.
TEST_F(Classify, SameFlagsGiveTheSameBits) {
  write_sentences(dir_ / "train.csv", 64, 0);
  write_sentences(dir_ / "val.csv", 32, 1);
  write_terms(dir_ / "terms.toml");
  auto fine_tune = [&](const std::string& run, int threads) {
    const std::string data =
        " --identity-terms " + (dir_ / "terms.toml") + " --threads " + std::to_string(threads);
    auto r = run_triad("classify -q --init " + lm() + " --train " + (dir_ / "train.csv") + " --val " +
                       (dir_ / "val.csv") + " --out " + run + data +
                       " --steps 12 --batch 8 --seq-len 16 --seed 3 --reweigh --adversary odds");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run_triad("predict -q --model " + run + " --data " + (dir_ / "val.csv") + " --out " + run +
                  "/p.jsonl" + data);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  };
  fine_tune(dir_ / "a", 2);
  fine_tune(dir_ / "second_run_elsewhere", 2);
  fine_tune(dir_ / "one_thread", 1);
  const std::string weights = read_file(dir_ / "a/classifier.safetensors");
  ASSERT_GT(weights.size(), 1000u);
  EXPECT_TRUE(weights == read_file(dir_ / "second_run_elsewhere/classifier.safetensors"));
  EXPECT_EQ(read_file(dir_ / "a/p.jsonl"), read_file(dir_ / "second_run_elsewhere/p.jsonl"));
  EXPECT_EQ(read_json_file(dir_ / "one_thread/classifier.json")["options"]["threads"], 1) << "recorded";
  const auto two = read_jsonl(dir_ / "a/p.jsonl"), one = read_jsonl(dir_ / "one_thread/p.jsonl");
  ASSERT_EQ(two.size(), 32u);
  ASSERT_EQ(one.size(), 32u);
  for (size_t i = 0; i < two.size(); ++i) {
    EXPECT_NEAR(two[i]["score"].get<double>(), one[i]["score"].get<double>(), 1e-4) << "row " << i;
  }
}

TEST_F(Classify, RefusesBadInput) {
  write_sentences(dir_ / "train.csv", 8, 0);
  EXPECT_THAT(run_triad("classify --init " + lm() + " --train " + (dir_ / "train.csv") + " --out " +
                        (dir_ / "x") + " --debias-update projection"),
              triad::testing::RefusedWith("needs an adversary"));
  EXPECT_THAT(run_triad("classify --init " + lm() + " --train " + (dir_ / "train.csv") + " --out " +
                        (dir_ / "x") + " --adversary parity --protect age"),
              triad::testing::RefusedWith("--protect age"));
  EXPECT_THAT(run_triad("classify --init " + lm() + " --train " + (dir_ / "train.csv") + " --out " +
                        (dir_ / "x") + " --seq-len 99"),
              triad::testing::RefusedWith("--seq-len 99"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x")) << "nothing written for a refused command";
}

}  // namespace
}  // namespace triad::fairness
