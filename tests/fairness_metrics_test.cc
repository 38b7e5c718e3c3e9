// The fairness metrics (fairness/metrics.h, report.h, statistics.h, compare.h), the predictions file and
// `triad fairness`. Every metric is cross-checked against scikit-learn / numpy / scipy
// (tests/fairness/sklearn_reference.py) on random data with tied scores, unlabelled examples, subgroups
// with one class only and an empty subgroup; a tiny example is checked by hand.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/parallel.h"
#include "triad/core/rng.h"
#include "triad/fairness/compare.h"
#include "triad/fairness/metrics.h"
#include "triad/fairness/predictions.h"
#include "triad/fairness/report.h"
#include "triad/fairness/statistics.h"

namespace triad::fairness {
namespace {

using ::testing::HasSubstr;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Data {
  std::vector<double> scores;
  std::vector<int8_t> labels;
  std::vector<Subgroup> groups;
};

Subgroup group(const std::string& attribute, const std::string& name, std::vector<uint8_t> member) {
  return Subgroup{name, attribute, std::move(member)};
}

// The worked example. Scores and labels (+ positive, - negative), groups X/a, X/b, Y/c (negatives only)
// and Y/d (empty):
//   example  0    1    2    3    4    5    6    7
//   score   0.9  0.8  0.7  0.6  0.4  0.4  0.2  0.1
//   label    +    -    +    +    -    +    -    -
//   X/a      *    *         *              *
//   X/b                *         *    *         *
//   Y/c           *              *
Data worked_example() {
  Data d;
  d.scores = {0.9, 0.8, 0.7, 0.6, 0.4, 0.4, 0.2, 0.1};
  d.labels = {1, 0, 1, 1, 0, 1, 0, 0};
  d.groups = {group("X", "a", {1, 1, 0, 1, 0, 0, 1, 0}), group("X", "b", {0, 0, 1, 0, 1, 1, 0, 1}),
              group("Y", "c", {0, 1, 0, 0, 1, 0, 0, 0}), group("Y", "d", {0, 0, 0, 0, 0, 0, 0, 0})};
  return d;
}

TEST(FairnessMetrics, WorkedExampleByHand) {
  const Data d = worked_example();
  MetricOptions o;
  const MetricEngine e(d.scores, d.labels, d.groups, o);
  const std::vector<double> v = e.evaluate();
  auto g = [&](size_t group, GroupMetric m) { return v[e.group_slot(group, m)]; };
  // Overall: each positive against the 4 negatives, the tie at 0.4 counting 1/2: (4 + 3 + 3 + 2.5) / 16.
  EXPECT_DOUBLE_EQ(v[kOverallAuc], 12.5 / 16);
  // a: positives {.9, .6}, negatives {.8, .2}: 3 of 4 pairs. BPSN: its negatives {.8, .2} against the
  // background's positives {.7, .4}: 2 of 4. BNSP: its positives against the background's negatives
  // {.4, .1}: 4 of 4.
  EXPECT_DOUBLE_EQ(g(0, kSubgroupAuc), 0.75);
  EXPECT_DOUBLE_EQ(g(0, kBpsnAuc), 0.5);
  EXPECT_DOUBLE_EQ(g(0, kBnspAuc), 1.0);
  // b: positives {.7, .4}, negatives {.4, .1}: 1 + 1 + 1 + 1/2 (the tie) = 3.5 of 4.
  EXPECT_DOUBLE_EQ(g(1, kSubgroupAuc), 0.875);
  EXPECT_DOUBLE_EQ(g(1, kBpsnAuc), 1.0);
  EXPECT_DOUBLE_EQ(g(1, kBnspAuc), 0.5);
  // c has negatives only: no subgroup AUC and no BNSP, but its BPSN is defined: its negatives {.8, .4}
  // against the positives {.9, .7, .6, .4}: 2 + 1 + 1 + 0.5 = 4.5 of 8.
  EXPECT_TRUE(std::isnan(g(2, kSubgroupAuc)));
  EXPECT_TRUE(std::isnan(g(2, kBnspAuc)));
  EXPECT_DOUBLE_EQ(g(2, kBpsnAuc), 4.5 / 8);
  for (int m = 0; m < kGroupMetrics; ++m) EXPECT_TRUE(std::isnan(g(3, GroupMetric(m)))) << m;  // d: empty
  // Threshold 0.5: a predicts .9 .8 .6 positive (3 of 4), TPR 2/2, FPR 1/2; b only .7: 1/4, TPR 1/2, FPR 0.
  EXPECT_DOUBLE_EQ(g(0, kPositiveRate), 0.75);
  EXPECT_DOUBLE_EQ(g(0, kTpr), 1.0);
  EXPECT_DOUBLE_EQ(g(0, kFpr), 0.5);
  EXPECT_DOUBLE_EQ(g(1, kPositiveRate), 0.25);
  EXPECT_DOUBLE_EQ(g(1, kTpr), 0.5);
  EXPECT_DOUBLE_EQ(g(1, kFpr), 0.0);
  // ECE of a, one example per bin: (|1-.9| + |0-.8| + |1-.6| + |0-.2|) / 4.
  EXPECT_DOUBLE_EQ(g(0, kEce), 1.5 / 4);
  // Overall: the two 0.4s share bin 4 (|1 - 0.8| = 0.2); the rest one per bin: (2.1) / 8.
  EXPECT_NEAR(v[kOverallEce], 2.1 / 8, 1e-15);
  // Attribute X: AUC gap 0.875 - 0.75; DPD 0.75 - 0.25; EOD 1 - 0.5; FPR gap 0.5; equalized odds 0.5;
  // BPSN gap 1 - 0.5 (b's against a's), BNSP gap 1 - 0.5 (a's against b's).
  const auto x = [&](AttributeMetric m) { return v[e.attribute_slot(0, m)]; };
  EXPECT_DOUBLE_EQ(x(kSubgroupAucGap), 0.125);
  EXPECT_DOUBLE_EQ(x(kDpd), 0.5);
  EXPECT_DOUBLE_EQ(x(kEod), 0.5);
  EXPECT_DOUBLE_EQ(x(kFprGap), 0.5);
  EXPECT_DOUBLE_EQ(x(kEqualizedOdds), 0.5);
  EXPECT_DOUBLE_EQ(x(kBpsnAucGap), 0.5);
  EXPECT_DOUBLE_EQ(x(kBnspAucGap), 0.5);
  // Attribute Y: c alone has a positive rate (d is empty), no gap has two groups.
  for (int m = 0; m < kAttributeMetrics; ++m)
    EXPECT_TRUE(std::isnan(v[e.attribute_slot(1, AttributeMetric(m))]));
  // Power means (p = -5) over the defined values: subgroup {.75, .875}, BPSN {.5, 1, .5625}, BNSP {1, .5}.
  auto pm = [](std::vector<double> xs) {
    double s = 0;
    for (double z : xs) s += std::pow(z, -5.0);
    return std::pow(s / xs.size(), -0.2);
  };
  EXPECT_NEAR(v[kPowerMeanSubgroupAuc], 0.79843, 1e-5);  // ((0.75^-5 + 0.875^-5) / 2)^(-1/5)
  EXPECT_NEAR(v[kPowerMeanSubgroupAuc], pm({0.75, 0.875}), 1e-14);
  EXPECT_NEAR(v[kPowerMeanBpsnAuc], pm({0.5, 1.0, 0.5625}), 1e-14);
  EXPECT_NEAR(v[kPowerMeanBnspAuc], pm({1.0, 0.5}), 1e-14);
  EXPECT_NEAR(v[kFinalBias], 0.25 * (12.5 / 16 + pm({0.75, 0.875}) + pm({0.5, 1.0, 0.5625}) + pm({1.0, 0.5})),
              1e-14);
  // b: .7 alone (0.3), the two .4s together (|1 - 0.8|), .1 alone: 0.6 / 4. c: (0.8 + 0.4) / 2, the max.
  EXPECT_NEAR(g(1, kEce), 0.6 / 4, 1e-15);
  EXPECT_NEAR(g(2, kEce), 0.6, 1e-15);
  EXPECT_DOUBLE_EQ(v[kEceMax], g(2, kEce));
  EXPECT_DOUBLE_EQ(roc_auc(d.scores, d.labels), 12.5 / 16);

  // The report says why c and d have no AUC, and flat_metrics leaves out what is undefined.
  o.bootstrap = 0;
  const FairnessReport r = fairness_report(d.scores, d.labels, d.groups, o);
  EXPECT_THAT(r.groups[2].note, HasSubstr("one class only (0 positive, 2 negative)"));
  EXPECT_THAT(r.groups[3].note, HasSubstr("no member"));
  EXPECT_EQ(r.attributes[0].auc_groups, 2);
  std::vector<std::string> names;
  for (const auto& [name, value] : flat_metrics(r)) names.push_back(name);
  EXPECT_THAT(names, ::testing::ElementsAre("fair_overall_auc", "fair_final_bias", "fair_ece_max",
                                            "fair_subgroup_auc_gap_X", "fair_eod_X", "fair_dpd_X",
                                            "fair_eq_odds_X", "fair_bpsn_gap_X", "fair_bnsp_gap_X"));
  const nlohmann::json j = to_json(r);
  EXPECT_TRUE(j["groups"][2]["subgroup_auc"]["value"].is_null());
  EXPECT_DOUBLE_EQ(j["overall_auc"]["value"].get<double>(), 12.5 / 16);
  EXPECT_DOUBLE_EQ(j["metrics"]["fair_subgroup_auc_gap_X"].get<double>(), 0.125);
  EXPECT_THAT(format_table(r), HasSubstr("n/a"));
}

// Random data: scores on a grid of `levels` values (ties), 5% unlabelled, and groups of every kind.
Data random_data(uint64_t seed, size_t n, int levels) {
  Rng rng(seed);
  Data d;
  for (size_t i = 0; i < n; ++i) {
    const double s = std::round(rng.uniform() * (levels - 1)) / (levels - 1);
    d.scores.push_back(s);
    d.labels.push_back(rng.uniform() < 0.05 ? kNoLabel : static_cast<int8_t>(rng.uniform() < 0.2 + 0.6 * s));
  }
  auto random_group = [&](const std::string& a, const std::string& name, double p) {
    std::vector<uint8_t> m(n);
    for (auto& x : m) x = rng.uniform() < p;
    d.groups.push_back(group(a, name, m));
  };
  auto one_class_group = [&](const std::string& a, const std::string& name, int8_t label, int count) {
    std::vector<uint8_t> m(n);
    for (size_t i = 0; i < n && count > 0; ++i) {
      if (d.labels[i] == label && rng.uniform() < 0.3) m[i] = 1, --count;
    }
    d.groups.push_back(group(a, name, m));
  };
  random_group("gender", "male", 0.25);
  random_group("gender", "female", 0.3);
  one_class_group("gender", "nonbinary", 0, 6);  // negatives only
  random_group("religion", "christian", 0.3);
  random_group("religion", "muslim", 0.1);
  d.groups.push_back(group("religion", "hindu", std::vector<uint8_t>(n)));  // empty
  random_group("race", "black", 0.2);
  one_class_group("race", "white", 1, 5);  // positives only
  return d;
}

bool have_sklearn() {
  return std::system("/usr/bin/python3 -c 'import sklearn, scipy, numpy' >/dev/null 2>&1") == 0;
}

nlohmann::json case_json(const Data& d, const std::vector<uint32_t>& w, const MetricOptions& o) {
  nlohmann::json groups = nlohmann::json::array();
  for (const Subgroup& g : d.groups)
    groups.push_back({{"attribute", g.attribute}, {"name", g.name}, {"member", g.member}});
  std::vector<int> labels(d.labels.begin(), d.labels.end());
  return {{"scores", d.scores},       {"labels", labels},   {"weights", w},    {"groups", groups},
          {"threshold", o.threshold}, {"bins", o.ece_bins}, {"power", o.power}};
}

void expect_same(double mine, const nlohmann::json& theirs, const std::string& what) {
  if (theirs.is_null()) {
    EXPECT_TRUE(std::isnan(mine)) << what << ": scikit-learn says undefined, triad " << mine;
  } else {
    EXPECT_NEAR(mine, theirs.get<double>(), 1e-12) << what;
  }
}

void expect_case(const MetricEngine& e, const std::vector<double>& v, const nlohmann::json& ref,
                 const std::string& name) {
  expect_same(v[kOverallAuc], ref["overall_auc"], name + " overall AUC");
  expect_same(v[kOverallEce], ref["overall_ece"], name + " overall ECE");
  expect_same(v[kPowerMeanSubgroupAuc], ref["power_means"][0], name + " power mean subgroup");
  expect_same(v[kPowerMeanBpsnAuc], ref["power_means"][1], name + " power mean BPSN");
  expect_same(v[kPowerMeanBnspAuc], ref["power_means"][2], name + " power mean BNSP");
  expect_same(v[kFinalBias], ref["final_bias"], name + " final bias");
  expect_same(v[kEceMax], ref["ece_max"], name + " ECE max");
  const char* group_keys[] = {"subgroup_auc", "bpsn_auc", "bnsp_auc", "positive_rate", "tpr", "fpr", "ece"};
  for (size_t g = 0; g < ref["groups"].size(); ++g) {
    for (int m = 0; m < kGroupMetrics; ++m)
      expect_same(v[e.group_slot(g, GroupMetric(m))], ref["groups"][g][group_keys[m]],
                  name + " group " + std::to_string(g) + " " + group_keys[m]);
  }
  const char* attribute_keys[] = {"subgroup_auc_gap", "dpd",          "eod",         "fpr_gap",
                                  "equalized_odds",   "bpsn_auc_gap", "bnsp_auc_gap"};
  for (size_t a = 0; a < ref["attributes"].size(); ++a) {
    for (int m = 0; m < kAttributeMetrics; ++m)
      expect_same(v[e.attribute_slot(a, AttributeMetric(m))], ref["attributes"][a][attribute_keys[m]],
                  name + " attribute " + e.attributes()[a] + " " + attribute_keys[m]);
  }
}

TEST(FairnessMetrics, AgreeWithScikitLearn) {
  if (!have_sklearn())
    GTEST_SKIP() << "/usr/bin/python3 with sklearn, scipy and numpy is missing (scripts/setup)";
  struct Case {
    std::string name;
    Data data;
    MetricOptions options;
    std::vector<uint32_t> weights;
  };
  std::vector<Case> cases;
  cases.push_back({"ties on 101 levels", random_data(1, 400, 101), {}, {}});
  cases.push_back({"ties on 11 levels", random_data(2, 300, 11), {}, {}});  // 0.5 and bin edges exactly
  MetricOptions other;
  other.threshold = 0.3, other.ece_bins = 7, other.power = -2;
  cases.push_back({"threshold 0.3, 7 bins, p = -2", random_data(3, 300, 21), other, {}});
  cases.push_back({"a bootstrap resample", random_data(4, 300, 11), {}, {}});
  for (Case& c : cases) c.weights.assign(c.data.scores.size(), 1);
  {
    const Case& c = cases.back();
    cases.back().weights =
        MetricEngine(c.data.scores, c.data.labels, c.data.groups, c.options).resample_weights(7, 42);
  }

  // The report's percentile intervals against numpy.percentile of the same resamples.
  const Data& pd = cases[0].data;
  MetricOptions po;
  po.bootstrap = 200, po.seed = 9;
  const MetricEngine pe(pd.scores, pd.labels, pd.groups, po);
  const std::vector<double> boot = pe.bootstrap(po.bootstrap, po.seed);
  const FairnessReport report = fairness_report(pd.scores, pd.labels, pd.groups, po);
  const std::vector<std::pair<size_t, const Estimate*>> checked = {
      {kOverallAuc, &report.overall_auc},
      {pe.group_slot(4, kSubgroupAuc), &report.groups[4].subgroup_auc},  // muslim: small, can lose a class
      {pe.attribute_slot(0, kEqualizedOdds), &report.attributes[0].equalized_odds}};

  nlohmann::json spec = {{"cases", nlohmann::json::array()},
                         {"ttests", nlohmann::json::array()},
                         {"percentiles", nlohmann::json::array()}};
  for (const Case& c : cases) spec["cases"].push_back(case_json(c.data, c.weights, c.options));
  for (const auto& [slot, estimate] : checked) {
    std::vector<double> column;
    for (int r = 0; r < po.bootstrap; ++r) {
      const double x = boot[r * pe.slots() + slot];
      if (!std::isnan(x)) column.push_back(x);
    }
    EXPECT_EQ(estimate->resamples, static_cast<int>(column.size()));
    spec["percentiles"].push_back({{"values", column}, {"q", {2.5, 97.5}}});
  }
  std::vector<std::pair<std::vector<double>, std::vector<double>>> pairs;
  for (int n : {2, 3, 5, 10}) {
    Rng rng(100 + n);
    std::vector<double> b, m;
    for (int i = 0; i < n; ++i)
      b.push_back(0.1 + 0.05 * rng.normal()), m.push_back(0.04 + 0.02 * rng.normal());
    pairs.emplace_back(b, m);
    spec["ttests"].push_back({{"baseline", b}, {"mitigated", m}, {"confidence", 0.95}});
  }
  // Nearly equal differences (-0.04, -0.04, -0.041) are a real, tiny spread: the formula's p, as scipy's.
  pairs.emplace_back(std::vector<double>{0.96, 0.88, 0.92}, std::vector<double>{0.92, 0.84, 0.879});
  spec["ttests"].push_back(
      {{"baseline", pairs.back().first}, {"mitigated", pairs.back().second}, {"confidence", 0.95}});

  testing::TempDir dir;
  testing::write_text(dir / "in.json", spec.dump());
  const testing::CommandResult r =
      testing::run_command("/usr/bin/python3 " + std::string(TRIAD_TEST_DATA) +
                           "/../fairness/sklearn_reference.py " + (dir / "in.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json ref = nlohmann::json::parse(r.out);

  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    const MetricEngine e(c.data.scores, c.data.labels, c.data.groups, c.options);
    expect_case(e, e.evaluate(c.weights), ref["cases"][k], c.name);
  }
  for (size_t k = 0; k < checked.size(); ++k) {
    EXPECT_NEAR(checked[k].second->lo, ref["percentiles"][k][0].get<double>(), 1e-12) << "percentile " << k;
    EXPECT_NEAR(checked[k].second->hi, ref["percentiles"][k][1].get<double>(), 1e-12) << "percentile " << k;
  }
  for (size_t k = 0; k < pairs.size(); ++k) {
    const PairedTest t = paired_t_test(pairs[k].first, pairs[k].second, 0.95);
    const nlohmann::json& x = ref["ttests"][k];
    EXPECT_NEAR(t.t, x["t"].get<double>(), 1e-9) << "t-test " << k;
    EXPECT_NEAR(t.p, x["p"].get<double>(), 1e-9) << "t-test " << k;
    EXPECT_NEAR(t.mean_difference, x["mean_difference"].get<double>(), 1e-12) << "t-test " << k;
    EXPECT_NEAR(t.ci_lo, x["ci"][0].get<double>(), 1e-9) << "t-test " << k;
    EXPECT_NEAR(t.ci_hi, x["ci"][1].get<double>(), 1e-9) << "t-test " << k;
  }
}

TEST(FairnessMetrics, BootstrapIsReproducibleOnAnyThreadCount) {
  const Data d = random_data(5, 500, 51);
  const MetricEngine e(d.scores, d.labels, d.groups, MetricOptions{});
  const int before = threads();
  set_threads(1);
  const std::vector<double> one = e.bootstrap(64, 3);
  set_threads(2);
  const std::vector<double> two = e.bootstrap(64, 3);
  set_threads(before);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    if (std::isnan(one[i]))
      EXPECT_TRUE(std::isnan(two[i])) << i;
    else
      EXPECT_EQ(one[i], two[i]) << i;
  }
  // The point estimate sits inside its interval.
  MetricOptions o;
  o.bootstrap = 300;
  const FairnessReport r = fairness_report(d.scores, d.labels, d.groups, o);
  EXPECT_LE(r.overall_auc.lo, r.overall_auc.value);
  EXPECT_GE(r.overall_auc.hi, r.overall_auc.value);
  EXPECT_EQ(r.overall_auc.resamples, 300);
  EXPECT_LT(r.groups[2].subgroup_auc.resamples, 1);  // one class: undefined, no interval
}

TEST(FairnessMetrics, PairedTestEdgeCases) {
  const PairedTest same = paired_t_test(std::vector<double>{0.1, 0.2}, std::vector<double>{0.1, 0.2});
  EXPECT_TRUE(std::isnan(same.t));
  EXPECT_TRUE(std::isnan(same.p));
  const PairedTest shifted =
      paired_t_test(std::vector<double>{0.1, 0.2, 0.3}, std::vector<double>{0.0, 0.1, 0.2});
  EXPECT_LT(shifted.mean_difference, 0);
  EXPECT_NEAR(shifted.mean_difference, -0.1, 1e-12);
  // Every difference -0.04 (the 2026-12-05 test split's subgroup AUCs moved in steps of 0.04): scipy says
  // p = 0, or ~1e-32 when rounding leaves an sd of ~1e-17 as here; three equal differences say nothing about
  // the spread over seeds, so p is undefined.
  const std::vector<double> base{0.96, 0.88, 0.92};
  const PairedTest steps = paired_t_test(base, std::vector<double>{0.96 - 0.04, 0.88 - 0.04, 0.92 - 0.04});
  EXPECT_TRUE(steps.equal_differences);
  EXPECT_TRUE(std::isnan(steps.p));
  EXPECT_TRUE(std::isinf(steps.t) && steps.t < 0);
  EXPECT_NEAR(steps.mean_difference, -0.04, 1e-12);
  const PairedTest exact = paired_t_test(std::vector<double>{0.5, 0.25}, std::vector<double>{0.75, 0.5});
  EXPECT_EQ(exact.sd_difference, 0);
  EXPECT_TRUE(exact.equal_differences);
  EXPECT_TRUE(std::isnan(exact.p));
  EXPECT_TRUE(shifted.equal_differences);  // -0.1 three times, up to rounding
  EXPECT_TRUE(std::isnan(shifted.p));
  EXPECT_THROW(paired_t_test(std::vector<double>{0.1}, std::vector<double>{0.2}), Error);
  EXPECT_THROW(paired_t_test(std::vector<double>{0.1, 0.2}, std::vector<double>{0.2}), Error);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(FairnessPredictions, RoundTrip) {
  testing::TempDir dir;
  const Data d = random_data(6, 50, 1000);
  std::vector<std::string> ids;
  for (size_t i = 0; i < d.scores.size(); ++i) ids.push_back("comments.csv:" + std::to_string(i + 2));
  write_predictions(dir / "p.jsonl", ids, d.labels, d.scores, d.groups);
  const Predictions p = read_predictions(dir / "p.jsonl");
  EXPECT_EQ(p.ids, ids);
  EXPECT_EQ(p.labels, d.labels);  // unknown labels included
  EXPECT_EQ(p.scores, d.scores);  // bit for bit
  // The empty group (religion/hindu) is not in the file; the others come back sorted.
  std::vector<Subgroup> expected;
  for (const Subgroup& g : d.groups) {
    if (std::find(g.member.begin(), g.member.end(), 1) != g.member.end()) expected.push_back(g);
  }
  std::sort(expected.begin(), expected.end(), [](const Subgroup& a, const Subgroup& b) {
    return std::tie(a.attribute, a.name) < std::tie(b.attribute, b.name);
  });
  ASSERT_EQ(p.subgroups.size(), expected.size());
  for (size_t g = 0; g < expected.size(); ++g) {
    EXPECT_EQ(p.subgroups[g].attribute, expected[g].attribute);
    EXPECT_EQ(p.subgroups[g].name, expected[g].name);
    EXPECT_EQ(p.subgroups[g].member, expected[g].member) << expected[g].name;
  }
  const std::string first = read_file(dir / "p.jsonl").substr(0, read_file(dir / "p.jsonl").find('\n'));
  EXPECT_THAT(first, HasSubstr("\"id\":\"comments.csv:2\""));
  EXPECT_THAT(first, HasSubstr("\"identities\":{\"gender\":["));
}

TEST(FairnessPredictions, BadLinesAreNamed) {
  testing::TempDir dir;
  const std::string good = R"({"id": "a", "label": 1, "score": 0.5, "identities": {"religion": ["muslim"]}})";
  auto error_for = [&](const std::string& second_line) {
    const std::string path = dir / "bad.jsonl";
    testing::write_text(path, good + "\n" + second_line + "\n");
    return error_of([&] { read_predictions(path); });
  };
  const std::string at = dir / "bad.jsonl:2: ";
  EXPECT_THAT(error_for(R"({"id": "b", "score": 1.5})"),
              HasSubstr(at + "field 'score': expected a number in [0, 1], got 1.5"));
  EXPECT_THAT(error_for(R"({"id": "b", "score": "0.3"})"), HasSubstr(at + "field 'score'"));
  EXPECT_THAT(error_for(R"({"id": "b"})"), HasSubstr(at + "field 'score' is missing"));
  EXPECT_THAT(error_for(R"({"score": 0.3})"), HasSubstr(at + "field 'id' is missing"));
  EXPECT_THAT(error_for(R"({"id": "a", "score": 0.3})"), HasSubstr(at + "field 'id': \"a\" appears twice"));
  EXPECT_THAT(error_for(R"({"id": "b", "label": 0.7, "score": 0.3})"), HasSubstr(at + "field 'label'"));
  EXPECT_THAT(error_for(R"({"id": "b", "score": 0.3, "identities": {"religion": "muslim"}})"),
              HasSubstr(at + "field 'identities.religion': expected a list of group names"));
  EXPECT_THAT(error_for(R"({"id": "b", "score": 0.3, "identities": ["muslim"]})"),
              HasSubstr(at + "field 'identities'"));
  EXPECT_THAT(error_for(R"({"id": "b", "score": 0.3)"), HasSubstr(at + "not a JSON object"));
  EXPECT_THAT(error_for("[1, 2]"), HasSubstr(at + "expected a JSON object"));
  // Unknown labels and blank lines are fine.
  testing::write_text(dir / "ok.jsonl", good + "\n\n" + R"({"id": "b", "label": null, "score": 0})" + "\n");
  const Predictions p = read_predictions(dir / "ok.jsonl");
  EXPECT_EQ(p.labels, (std::vector<int8_t>{1, kNoLabel}));
}

TEST(FairnessCommand, ReportAndComparison) {
  testing::TempDir dir;
  const Data d = worked_example();
  std::vector<std::string> ids;
  for (size_t i = 0; i < d.scores.size(); ++i) ids.push_back("x" + std::to_string(i));
  write_predictions(dir / "p.jsonl", ids, d.labels, d.scores, d.groups);
  testing::CommandResult r =
      testing::run_triad("fairness " + (dir / "p.jsonl") + " --bootstrap 50 --out " + (dir / "r.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("subgroup AUC gap"));
  EXPECT_THAT(r.out, HasSubstr("one class only"));
  const nlohmann::json report = read_json_file(dir / "r.json");
  EXPECT_DOUBLE_EQ(report["overall_auc"]["value"].get<double>(), 12.5 / 16);
  EXPECT_EQ(report["options"]["bootstrap"], 50);

  // Three "seeds" of each: the mitigated runs rank a's negatives lower.
  std::string baseline, mitigated;
  for (int seed = 0; seed < 3; ++seed) {
    std::vector<double> b = d.scores, m = d.scores;
    b[7] = 0.1 + 0.01 * seed;
    m[1] = 0.5 - 0.05 * seed, m[6] = 0.05;
    const std::string bp = dir / ("b" + std::to_string(seed) + ".jsonl"),
                      mp = dir / ("m" + std::to_string(seed) + ".jsonl");
    write_predictions(bp, ids, d.labels, b, d.groups);
    write_predictions(mp, ids, d.labels, m, d.groups);
    baseline += (seed ? "," : "") + bp;
    mitigated += (seed ? "," : "") + mp;
  }
  r = testing::run_triad("fairness --baseline " + baseline + " --mitigated " + mitigated + " --out " +
                         (dir / "c.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("fair_subgroup_auc_gap_X"));
  const nlohmann::json c = read_json_file(dir / "c.json");
  EXPECT_EQ(c["metrics"][0]["name"], "fair_overall_auc");
  EXPECT_EQ(c["metrics"][0]["pairs"], 3);
  EXPECT_TRUE(c["metrics"][0]["p"].is_number());

  EXPECT_THAT(testing::run_triad("fairness --baseline " + baseline + " --mitigated " + (dir / "m0.jsonl")),
              testing::RefusedWith("paired by position"));
  EXPECT_THAT(testing::run_triad("fairness"), testing::RefusedWith("give a predictions file"));
  EXPECT_THAT(testing::run_triad("fairness " + (dir / "p.jsonl") + " --threshold 2"),
              testing::RefusedWith("--threshold must be in [0, 1]"));
  testing::write_text(dir / "bad.jsonl", "{\"id\": \"a\", \"score\": 0.5}\n{\"id\": 3, \"score\": 0.5}\n");
  r = testing::run_triad("fairness " + (dir / "bad.jsonl"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir / "bad.jsonl:2: field 'id'"));
  r = testing::run_triad("fairness --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("BPSN AUC"));
}

}  // namespace
}  // namespace triad::fairness
