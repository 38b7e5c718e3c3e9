// ERASER's metrics (explain/eraser.h) and attention rollout / flow (explain/attention_graph.h): each on a
// small example worked by hand in the comments, and the ones scikit-learn or numpy can compute (average
// precision, token P/R/F1, rollout) on random cases with ties through tests/explain/reference.py.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/rng.h"
#include "triad/explain/attention_graph.h"
#include "triad/explain/eraser.h"

namespace triad::explain {
namespace {

using Mask = std::vector<uint8_t>;

// Runs tests/explain/reference.py on `spec`; false (the test skips) when python3, sklearn or numpy is
// missing.
bool reference(const nlohmann::json& spec, nlohmann::json* out) {
  testing::TempDir dir;
  testing::write_text(dir / "in.json", spec.dump());
  const auto r = testing::run_command("/usr/bin/python3 " + std::string(TRIAD_TEST_DATA) +
                                      "/../explain/reference.py " + (dir / "in.json"));
  if (r.exit_code != 0 && r.err.find("ModuleNotFoundError") != std::string::npos) return false;
  EXPECT_EQ(r.exit_code, 0) << r.err;
  *out = r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  return true;
}

TEST(EraserTopK, TiesGoToTheEarlierTokenAndAlwaysKeepIsSkipped) {
  const std::vector<double> s = {0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.0, 0.3};
  EXPECT_EQ(top_k_mask(s, 3), (Mask{0, 1, 0, 1, 0, 1, 0, 0}));
  EXPECT_EQ(top_k_mask(s, 4), (Mask{0, 1, 1, 1, 0, 1, 0, 0}));  // 0.3 twice: token 2 before token 7
  EXPECT_EQ(top_k_mask(s, 0), Mask(8, 0));
  EXPECT_EQ(top_k_mask(s, 20), Mask(8, 1));
  const Mask keep = {0, 1, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(top_k_mask(s, 2, keep), (Mask{0, 0, 0, 1, 0, 1, 0, 0}));
  EXPECT_THROW(top_k_mask(std::vector<double>{1, NAN}, 1), Error);
}

TEST(EraserTopK, FractionsRoundUp) {
  EXPECT_EQ(tokens_for_fraction(30, 0.1), 3);  // not ceil(3.0000000000000004) = 4
  EXPECT_EQ(tokens_for_fraction(100, 0.2), 20);
  EXPECT_EQ(tokens_for_fraction(10, 0.01), 1);
  EXPECT_EQ(tokens_for_fraction(7, 0.5), 4);
  EXPECT_EQ(tokens_for_fraction(20, 0.05), 1);
  EXPECT_EQ(tokens_for_fraction(21, 0.05), 2);
  EXPECT_EQ(tokens_for_fraction(0, 0.5), 0);
  EXPECT_THROW(tokens_for_fraction(10, 1.5), Error);
}

TEST(EraserRationale, TokenAndIouMatchesByHand) {
  // Gold: tokens 1, 2 and 5, i.e. spans [1, 3) and [5, 6).
  const Mask gold = {0, 1, 1, 0, 0, 1, 0, 0};
  const std::vector<double> s = {0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.0, 0.3};
  EXPECT_EQ(spans(gold), (std::vector<std::pair<int, int>>{{1, 3}, {5, 6}}));

  // k = 3 (the rationale's length): tokens 1, 3, 5; two right, so P = R = F1 = 2/3. Spans [1,2) (IOU 1/2
  // with [1,3): a match, 0.5 counts), [3,4) (no overlap), [5,6) (IOU 1): P = 2/3, R = 2/2, F1 = 0.8.
  const RationaleMatch m3 = match_top_k(gold, s);
  EXPECT_EQ(m3.token.matched, 2);
  EXPECT_DOUBLE_EQ(m3.token.precision(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(m3.token.recall(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(m3.token.f1(), 2.0 / 3);
  EXPECT_EQ(m3.iou.matched, 2);
  EXPECT_EQ(m3.iou.predicted, 3);
  EXPECT_EQ(m3.iou.gold, 2);
  EXPECT_DOUBLE_EQ(m3.iou.f1(), 0.8);

  // k = 4 adds token 2 (tied with 7, earlier): P = 3/4, R = 1, F1 = 6/7; spans [1,4) (IOU 2/3) and [5,6).
  const RationaleMatch m4 = match_top_k(gold, s, 4);
  EXPECT_DOUBLE_EQ(m4.token.precision(), 0.75);
  EXPECT_DOUBLE_EQ(m4.token.recall(), 1.0);
  EXPECT_DOUBLE_EQ(m4.token.f1(), 6.0 / 7);
  EXPECT_DOUBLE_EQ(m4.iou.precision(), 1.0);
  EXPECT_DOUBLE_EQ(m4.iou.f1(), 1.0);

  // Below the threshold: [0, 3) against [2, 4) overlaps 1 of 4 tokens.
  const MatchCounts low = iou_matches(Mask{0, 0, 1, 1, 0}, Mask{1, 1, 1, 0, 0});
  EXPECT_EQ(low.matched, 0);
  EXPECT_EQ(low.f1(), 0.0);
  EXPECT_EQ(iou_matches(Mask{0, 0, 1, 1, 0}, Mask{1, 1, 1, 0, 0}, 0.25).matched, 1);

  // Micro over a dataset: counts add. Nothing predicted, nothing gold: P = R = F1 = 0 (ERASER).
  MatchCounts total = m3.token;
  total += m4.token;
  EXPECT_DOUBLE_EQ(total.precision(), 5.0 / 7);
  EXPECT_DOUBLE_EQ(total.recall(), 5.0 / 6);
  EXPECT_EQ(token_matches(Mask{0, 0}, Mask{0, 0}).f1(), 0.0);
  EXPECT_THROW(token_matches(Mask{0, 1}, Mask{0}), Error);
}

TEST(EraserAuprc, AveragePrecisionByHand) {
  // Distinct scores: (R, P) = (1/2, 1), (1/2, 1/2), (1, 2/3), (1, 1/2) -> AP = 1/2 + 1/2 * 2/3.
  EXPECT_DOUBLE_EQ(average_precision(Mask{1, 0, 1, 0}, std::vector<double>{0.9, 0.8, 0.7, 0.1}), 5.0 / 6);
  // Tied top two enter together: (1/2, 1/2), then (1, 2/3) -> 1/4 + 1/3.
  EXPECT_DOUBLE_EQ(average_precision(Mask{1, 0, 1}, std::vector<double>{0.5, 0.5, 0.1}), 7.0 / 12);
  EXPECT_DOUBLE_EQ(average_precision(Mask{1, 1, 1}, std::vector<double>{0.5, 0.2, 0.1}), 1.0);
  EXPECT_TRUE(std::isnan(average_precision(Mask{0, 0}, std::vector<double>{0.5, 0.2})));
}

// A linear toy model: p(y) = the sum of the weights of the kept tokens (1 with every token).
const std::vector<double> kWeights = {0.05, 0.3, 0.02, 0.1, 0.2, 0.01, 0.04, 0.08, 0.15, 0.05};
const std::vector<double> kScores = {0, 9, 1, 6, 8, 2, 3, 5, 7, 4};  // ranks tokens 1, 4, 8, 3, 7, 9, ...

KeepMaskModel linear_model(std::vector<std::vector<int>>* seen) {
  return [seen](const std::vector<std::vector<int>>& masks) {
    if (seen) *seen = masks;
    std::vector<double> p;
    for (const auto& m : masks) {
      double sum = 0;
      for (size_t i = 0; i < m.size(); ++i) sum += m[i] * kWeights[i];
      p.push_back(sum);
    }
    return p;
  };
}

TEST(EraserFaithfulness, LinearModelByHand) {
  // 10 tokens: 1 %, 5 % and 10 % are 1 token, 20 % is 2, 50 % is 5. Comprehensiveness = the weight of
  // the top-k, sufficiency = 1 - that: k = 1: 0.3 / 0.7, k = 2: 0.5 / 0.5, k = 5 (1, 4, 8, 3, 7): 0.83 /
  // 0.17.
  std::vector<std::vector<int>> seen;
  const Faithfulness f = faithfulness(kScores, linear_model(&seen));
  EXPECT_EQ(f.k, (std::vector<int>{1, 1, 1, 2, 5}));
  EXPECT_NEAR(f.full, 1.0, 1e-12);
  const std::vector<double> comp = {0.3, 0.3, 0.3, 0.5, 0.83}, suff = {0.7, 0.7, 0.7, 0.5, 0.17};
  for (size_t b = 0; b < 5; ++b) {
    EXPECT_NEAR(f.comprehensiveness[b], comp[b], 1e-12) << "bin " << b;
    EXPECT_NEAR(f.sufficiency[b], suff[b], 1e-12) << "bin " << b;
  }
  EXPECT_NEAR(f.aopc_comprehensiveness(), 2.23 / 5, 1e-12);
  EXPECT_NEAR(f.aopc_sufficiency(), 2.77 / 5, 1e-12);
  // One call: the full input, five with the top-k dropped, five with only the top-k.
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen[0], std::vector<int>(10, 1));
  EXPECT_EQ(seen[4], (std::vector<int>{1, 0, 1, 1, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(seen[9], (std::vector<int>{0, 1, 0, 0, 1, 0, 0, 0, 0, 0}));
}

TEST(EraserFaithfulness, AlwaysKeepTokensStayAndDoNotCount) {
  // Token 1 (the best score) is always kept: 9 eligible tokens, 50 % = ceil(4.5) = 5 tokens: 4, 8, 3, 7, 9.
  Mask keep(10, 0);
  keep[1] = 1;
  const std::vector<double> fractions = {0.1, 0.5};
  const Faithfulness f = faithfulness(kScores, linear_model(nullptr), fractions, keep);
  EXPECT_EQ(f.k, (std::vector<int>{1, 5}));
  EXPECT_NEAR(f.comprehensiveness[0], 0.2, 1e-12);
  EXPECT_NEAR(f.sufficiency[0], 1 - (0.2 + 0.3), 1e-12);
  EXPECT_NEAR(f.comprehensiveness[1], 0.2 + 0.15 + 0.1 + 0.08 + 0.05, 1e-12);
  EXPECT_NEAR(f.sufficiency[1], 1 - (0.3 + 0.2 + 0.15 + 0.1 + 0.08 + 0.05), 1e-12);

  const std::vector<int> ks = {3};
  EXPECT_NEAR(faithfulness_at(kScores, ks, linear_model(nullptr)).comprehensiveness[0], 0.65, 1e-12);
  const KeepMaskModel short_answer = [](const std::vector<std::vector<int>>&) {
    return std::vector<double>{1};
  };
  EXPECT_THROW(faithfulness_at(kScores, ks, short_answer), Error);
}

// Rollout and flow. Layer 0 and layer 1 of three causal tokens (rows = queries).
const std::vector<std::vector<double>> kLayers = {{1, 0, 0, 0.5, 0.5, 0, 0.2, 0.2, 0.6},
                                                  {1, 0, 0, 0.5, 0.5, 0, 0.5, 0.25, 0.25}};

TEST(AttentionRollout, ThreeTokensByHand) {
  // Â_0 = [[1,0,0],[.25,.75,0],[.1,.1,.8]], Â_1 = [[1,0,0],[.25,.75,0],[.25,.125,.625]]; R = Â_1 Â_0:
  // row 1 = .25 [1,0,0] + .75 [.25,.75,0]; row 2 = .25 [1,0,0] + .125 [.25,.75,0] + .625 [.1,.1,.8].
  const std::vector<double> r = attention_rollout(kLayers, 3);
  const std::vector<double> expected = {1, 0, 0, 0.4375, 0.5625, 0, 0.34375, 0.15625, 0.5};
  for (size_t i = 0; i < 9; ++i) EXPECT_NEAR(r[i], expected[i], 1e-14) << i;
  // Without the residual, the plain product A_1 A_0.
  const std::vector<double> plain = attention_rollout(kLayers, 3, 0.0);
  EXPECT_NEAR(plain[6], 0.5 + 0.25 * 0.5 + 0.25 * 0.2, 1e-14);
  EXPECT_NEAR(plain[8], 0.25 * 0.6, 1e-14);
}

std::vector<std::vector<double>> random_causal(Rng& rng, int layers, int t) {
  std::vector<std::vector<double>> out;
  for (int l = 0; l < layers; ++l) {
    std::vector<double> a(size_t(t) * t, 0.0);
    for (int i = 0; i < t; ++i) {
      double sum = 0;
      for (int j = 0; j <= i; ++j) sum += a[size_t(i) * t + j] = std::exp(2 * rng.normal());
      for (int j = 0; j <= i; ++j) a[size_t(i) * t + j] /= sum;
    }
    out.push_back(a);
  }
  return out;
}

// Average precision and token P/R/F1 against scikit-learn on 40 random instances with many ties (one without
// a rationale token), and rollout against numpy's product on random causal layers: one python3 run.
TEST(EraserReference, AgreesWithScikitLearnAndNumpy) {
  Rng rng(18);
  nlohmann::json spec = {{"ap", nlohmann::json::array()},
                         {"prf", nlohmann::json::array()},
                         {"rollout", nlohmann::json::array()}};
  std::vector<std::pair<Mask, std::vector<double>>> ap_cases;
  std::vector<std::pair<Mask, Mask>> prf_cases;
  for (int c = 0; c < 40; ++c) {
    const int n = 1 + int(rng.next() % 40), levels = 1 + int(rng.next() % 8);  // few levels: many ties
    Mask gold(n);
    std::vector<double> s(n);
    for (int i = 0; i < n; ++i) {
      gold[i] = rng.uniform() < 0.3;
      s[i] = double(rng.next() % levels) / levels + (gold[i] ? 0.1 : 0.0);
    }
    if (c == 0) std::fill(gold.begin(), gold.end(), 0);  // undefined
    const Mask predicted = top_k_mask(s, int(rng.next() % (n + 1)));
    ap_cases.emplace_back(gold, s);
    prf_cases.emplace_back(gold, predicted);
    spec["ap"].push_back({{"rationale", gold}, {"scores", s}});
    spec["prf"].push_back({{"rationale", gold}, {"predicted", predicted}});
  }
  const std::vector<std::pair<std::vector<std::vector<double>>, double>> rollouts = {
      {random_causal(rng, 4, 6), 0.5}, {random_causal(rng, 1, 5), 0.5}, {random_causal(rng, 3, 7), 0.0}};
  for (const auto& [layers, residual] : rollouts)
    spec["rollout"].push_back(
        {{"tokens", int(std::sqrt(layers[0].size()))}, {"layers", layers}, {"residual", residual}});

  nlohmann::json ref;
  if (!reference(spec, &ref))
    GTEST_SKIP() << "/usr/bin/python3 with sklearn and numpy is missing (scripts/setup)";
  ASSERT_FALSE(ref.is_null());
  for (size_t c = 0; c < ap_cases.size(); ++c) {
    const double mine = average_precision(ap_cases[c].first, ap_cases[c].second);
    if (ref["ap"][c].is_null()) {
      EXPECT_TRUE(std::isnan(mine)) << "case " << c;
    } else {
      EXPECT_NEAR(mine, ref["ap"][c].get<double>(), 1e-12) << "case " << c;
    }
    const MatchCounts m = token_matches(prf_cases[c].first, prf_cases[c].second);
    EXPECT_NEAR(m.precision(), ref["prf"][c][0].get<double>(), 1e-12) << "case " << c;
    EXPECT_NEAR(m.recall(), ref["prf"][c][1].get<double>(), 1e-12) << "case " << c;
    EXPECT_NEAR(m.f1(), ref["prf"][c][2].get<double>(), 1e-12) << "case " << c;
  }
  for (size_t c = 0; c < rollouts.size(); ++c) {
    const int t = int(std::sqrt(rollouts[c].first[0].size()));
    const auto mine = attention_rollout(rollouts[c].first, t, rollouts[c].second);
    ASSERT_EQ(mine.size(), ref["rollout"][c].size());
    for (size_t i = 0; i < mine.size(); ++i) EXPECT_NEAR(mine[i], ref["rollout"][c][i].get<double>(), 1e-12);
  }
}

TEST(AttentionFlow, TwoLayersThreeTokensByHand) {
  // Without the residual: from the output of token 2, the edges to level 1 carry .5, .25, .25; from level 1
  // down, rows [1,0,0], [.5,.5,0], [.2,.2,.6]. Each input is reached along three node-disjoint two-edge
  // paths, so its flow is the sum of the paths' bottlenecks:
  //   input 0: min(.5,1) + min(.25,.5) + min(.25,.2) = .95; input 1: min(.25,.5) + min(.25,.2) = .45;
  //   input 2: min(.25,.6) = .25.
  const auto f2 = attention_flow(kLayers, 3, 2, 0.0);
  EXPECT_NEAR(f2[0], 0.95, 1e-12);
  EXPECT_NEAR(f2[1], 0.45, 1e-12);
  EXPECT_NEAR(f2[2], 0.25, 1e-12);
  // Token 1: .5 to each of level 1's tokens 0 and 1; input 0 gets .5 + .5, input 1 gets .5, input 2 none.
  const auto f1 = attention_flow(kLayers, 3, 1, 0.0);
  EXPECT_NEAR(f1[0], 1.0, 1e-12);
  EXPECT_NEAR(f1[1], 0.5, 1e-12);
  EXPECT_EQ(f1[2], 0.0);
  EXPECT_EQ(attention_flow(kLayers, 3, 0, 0.0), (std::vector<double>{1, 0, 0}));
  // The min cut inside: every unit from token 2 goes through level 1's token 2, then splits .2/.2/.6.
  const std::vector<std::vector<double>> funnel = {kLayers[0], {1, 0, 0, 0.5, 0.5, 0, 0, 0, 1}};
  const auto ff = attention_flow(funnel, 3, 2, 0.0);
  EXPECT_NEAR(ff[0], 0.2, 1e-12);
  EXPECT_NEAR(ff[1], 0.2, 1e-12);
  EXPECT_NEAR(ff[2], 0.6, 1e-12);
}

TEST(AttentionFlow, OneLayerIsTheAttentionAndRolloutBoundsTheFlow) {
  Rng rng(3);
  const auto one = random_causal(rng, 1, 6);
  const auto hat = residual_attention(one, 6)[0];
  for (int t = 0; t < 6; ++t) {
    const auto f = attention_flow(one, 6, t);
    for (int j = 0; j < 6; ++j) EXPECT_NEAR(f[j], hat[size_t(t) * 6 + j], 1e-12) << t << " " << j;
  }
  // rollout[t, j] <= flow(t, j) <= min(1, the capacity into input j), and 0 for a later token (causal).
  for (int layers : {2, 4}) {
    const int t = 8;
    const auto a = random_causal(rng, layers, t);
    const auto r = attention_rollout(a, t);
    const auto h0 = residual_attention(a, t)[0];
    for (int p = 0; p < t; ++p) {
      const auto f = attention_flow(a, t, p);
      for (int j = 0; j < t; ++j) {
        double into = 0;
        for (int i = 0; i < t; ++i) into += h0[size_t(i) * t + j];
        EXPECT_LE(r[size_t(p) * t + j], f[j] + 1e-12) << p << " " << j;
        EXPECT_LE(f[j], std::min(1.0, into) + 1e-12) << p << " " << j;
        if (j > p) {
          EXPECT_EQ(f[j], 0.0);
        }
      }
    }
  }
}

TEST(AttentionGraph, RefusesMalformedLayers) {
  EXPECT_THROW(attention_rollout({}, 3), Error);
  EXPECT_THROW(attention_rollout({{1, 0, 0}}, 3), Error);                         // not 3 x 3
  EXPECT_THROW(attention_rollout({{1, 0, 0, 0.5, 0.4, 0, 0, 0, 1}}, 3), Error);   // row 1 sums to 0.9
  EXPECT_THROW(attention_rollout({{1, 0, 0, 1.5, -0.5, 0, 0, 0, 1}}, 3), Error);  // negative
  EXPECT_THROW(attention_flow(kLayers, 3, 3), Error);                             // no such position
  EXPECT_THROW(attention_rollout(kLayers, 3, 1.5), Error);                        // residual weight
}

}  // namespace
}  // namespace triad::explain
