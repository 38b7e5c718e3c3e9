#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/parallel.h"
#include "triad/model/gpt.h"
#include "triad/remat/planner.h"

namespace triad {
namespace {

const GptConfig kConfig{.layers = 4, .d_model = 32, .heads = 2, .seq_len = 24, .vocab = 50};
constexpr int kB = 2, kT = 24;

std::vector<int32_t> tokens(int salt) {
  std::vector<int32_t> t(kB * kT);
  for (size_t i = 0; i < t.size(); ++i)
    t[i] = static_cast<int32_t>((i * 13 + salt * 7 + i * i) % kConfig.vocab);
  return t;
}

// One forward + backward under `plan`; returns the gradients and the arena's peak.
std::pair<std::vector<float>, size_t> step(const RematPlan& plan) {
  Gpt<float> model(kConfig);
  model.init_weights(4);
  model.set_remat_plan(plan);
  auto x = tokens(1), y = tokens(2);
  model.zero_grads();
  model.forward(x.data(), y.data(), kB, kT);
  model.backward(1.0f / (kB * kT));
  EXPECT_EQ(model.arena().live_bytes(), 0u);
  return {std::vector<float>(model.grads(), model.grads() + model.num_params()), model.arena().peak_bytes()};
}

ActivationProfile profile_with_times() {
  ActivationProfile p = ActivationProfile::for_shape(kConfig, kB, kT);
  std::mt19937 rng(5);
  for (auto& row : p.seconds) {
    for (auto& s : row) s = 1e-4 * (1 + rng() % 100);
  }
  return p;
}

class PlannerGradients : public ::testing::TestWithParam<PlannerKind> {};

TEST_P(PlannerGradients, BitIdenticalToKeepingEverythingAndPeakAsPredicted) {
  set_threads(2);
  ActivationProfile profile = profile_with_times();
  const size_t none_peak = simulate(RematPlan::keep_all(kConfig.layers), profile).peak_bytes;
  const RematPlan plan = make_plan(GetParam(), profile, none_peak * 6 / 10);
  auto [reference, reference_peak] = step(RematPlan::keep_all(kConfig.layers));
  auto [grads, peak] = step(plan);
  ASSERT_EQ(grads.size(), reference.size());
  EXPECT_EQ(std::memcmp(grads.data(), reference.data(), grads.size() * sizeof(float)), 0)
      << planner_name(GetParam()) << " changed the gradients";
  EXPECT_EQ(peak, simulate(plan, profile).peak_bytes) << "measured peak == predicted peak";
  EXPECT_EQ(reference_peak, none_peak);
  if (GetParam() != PlannerKind::kNone) {
    EXPECT_LT(peak, reference_peak);
  }
  set_threads(1);
}

INSTANTIATE_TEST_SUITE_P(Remat, PlannerGradients,
                         ::testing::Values(PlannerKind::kNone, PlannerKind::kFull, PlannerKind::kSqrt,
                                           PlannerKind::kSelective, PlannerKind::kGreedy,
                                           PlannerKind::kOptimal),
                         [](const auto& info) { return std::string(planner_name(info.param)); });

TEST(Remat, ArbitraryPlansKeepGradientsAndPredictions) {
  set_threads(2);
  ActivationProfile profile = profile_with_times();
  auto [reference, _] = step(RematPlan::keep_all(kConfig.layers));
  std::mt19937 rng(17);
  for (int trial = 0; trial < 12; ++trial) {
    RematPlan plan{std::vector<uint16_t>(kConfig.layers)};
    for (auto& m : plan.keep) m = static_cast<uint16_t>(rng() & kKeepAll);
    plan.normalize();
    auto [grads, peak] = step(plan);
    EXPECT_EQ(std::memcmp(grads.data(), reference.data(), grads.size() * sizeof(float)), 0) << trial;
    EXPECT_EQ(peak, simulate(plan, profile).peak_bytes) << trial;
  }
  set_threads(1);
}

// A random profile of `layers` blocks: sizes and times drawn per unit, so the exhaustive check exercises
// the planner's memory model rather than one model shape.
ActivationProfile random_profile(int layers, uint32_t seed) {
  std::mt19937 rng(seed);
  GptConfig c = kConfig;
  c.layers = layers;
  ActivationProfile p = ActivationProfile::for_shape(c, 1, 8);
  for (auto& row : p.bytes) {
    for (auto& b : row) b = b ? 64 * (1 + rng() % 40) : 0;
  }
  // As in the engine, the backward scratch is at least a block output (the planner relies on it).
  size_t& scratch = p.bytes[0][static_cast<size_t>(Act::kScratch)];
  for (int l = 0; l < layers; ++l) scratch = std::max(scratch, p.bytes_of(l, Act::kBlockOut));
  for (auto& row : p.seconds) {
    for (auto& s : row) s = 1e-3 * (1 + rng() % 50);
  }
  return p;
}

TEST(RematOptimal, MatchesExhaustiveSearchOnSmallInstances) {
  // 2^17 simulated plans per instance: 130 s each under the sanitizers, which the other remat tests' runs of
  // the same simulator already cover.
  if (testing::kSanitized) GTEST_SKIP() << "exhaustive search: too slow under the sanitizers";
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    ActivationProfile p = random_profile(2, seed);
    // Every plan of two blocks: 9 + 8 free bits (the last output is always stored).
    std::vector<std::pair<size_t, double>> all;
    for (uint32_t bits = 0; bits < (1u << 17); ++bits) {
      RematPlan plan{{static_cast<uint16_t>(bits & 0x1ff), static_cast<uint16_t>(bits >> 9)}};
      plan.normalize();
      Prediction pr = simulate(plan, p);
      all.emplace_back(pr.peak_bytes, pr.recompute_seconds);
    }
    const size_t lo = minimum_budget(p);
    const size_t hi = simulate(RematPlan::keep_all(2), p).peak_bytes;
    size_t brute_min = hi;
    for (auto& [peak, s] : all) brute_min = std::min(brute_min, peak);
    EXPECT_EQ(lo, brute_min) << "seed " << seed;
    for (int i = 0; i <= 10; ++i) {
      const size_t budget = lo + (hi - lo) * static_cast<size_t>(i) / 10;
      double best = 1e300;
      for (auto& [peak, s] : all) {
        if (peak <= budget) best = std::min(best, s);
      }
      Prediction got = simulate(make_plan(PlannerKind::kOptimal, p, budget), p);
      EXPECT_LE(got.peak_bytes, budget);
      EXPECT_NEAR(got.recompute_seconds, best, 1e-12) << "seed " << seed << " budget " << budget;
    }
  }
}

TEST(RematOptimal, NeverWorseThanTheOtherPlannersAtTheSameBudget) {
  for (int layers : {3, 6, 12}) {
    ActivationProfile p = random_profile(layers, 100 + layers);
    const size_t lo = minimum_budget(p), hi = simulate(RematPlan::keep_all(layers), p).peak_bytes;
    for (int i = 0; i <= 8; ++i) {
      const size_t budget = lo + (hi - lo) * static_cast<size_t>(i) / 8;
      const double optimal = simulate(make_plan(PlannerKind::kOptimal, p, budget), p).recompute_seconds;
      for (PlannerKind other : {PlannerKind::kNone, PlannerKind::kFull, PlannerKind::kSqrt,
                                PlannerKind::kSelective, PlannerKind::kGreedy}) {
        Prediction pr = simulate(make_plan(other, p, budget), p);
        if (pr.peak_bytes <= budget) {
          EXPECT_LE(optimal, pr.recompute_seconds + 1e-12) << planner_name(other);
        }
      }
    }
  }
}

// Exactness at a realistic shape, where exhaustive search is out of reach: a looser budget never costs
// more recompute, and every plan fits. (Coarsened memory or truncated fronts break this first.)
TEST(RematOptimal, MoreBudgetNeverCostsMoreRecompute) {
  GptConfig c{.layers = 8, .d_model = 96, .heads = 4, .seq_len = 32, .vocab = 300};
  ActivationProfile p = ActivationProfile::for_shape(c, 2, 32);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> noise(0.85, 1.15);  // per-block measurement noise
  for (size_t l = 0; l < p.seconds.size(); ++l) {
    for (size_t k = 0; k < p.seconds[l].size(); ++k)
      p.seconds[l][k] = 1e-9 * double(p.bytes[l][k]) * noise(rng);
  }
  const size_t lo = minimum_budget(p), hi = simulate(RematPlan::keep_all(c.layers), p).peak_bytes;
  double previous = 1e300;
  for (int i = 0; i <= 40; ++i) {
    const size_t budget = lo + (hi - lo) * static_cast<size_t>(i) / 40;
    Prediction got = simulate(make_plan(PlannerKind::kOptimal, p, budget), p);
    EXPECT_LE(got.peak_bytes, budget);
    EXPECT_LE(got.recompute_seconds, previous + 1e-15) << "budget " << budget;
    previous = got.recompute_seconds;
  }
  EXPECT_EQ(previous, 0.0);  // everything kept at the top
}

TEST(Remat, SlicedLogitsAreChargedTheLogitsRecompute) {
  ActivationProfile p = profile_with_times();
  RematPlan plan = RematPlan::keep_all(kConfig.layers);
  plan.keep_logits = false;
  EXPECT_DOUBLE_EQ(simulate(plan, p).recompute_seconds, p.seconds_of(-1, Act::kLogits));
}

TEST(RematOptimal, ABudgetBelowTheMinimumSaysTheMinimum) {
  ActivationProfile p = profile_with_times();
  const size_t lo = minimum_budget(p);
  EXPECT_NO_THROW(make_plan(PlannerKind::kOptimal, p, lo));
  try {
    make_plan(PlannerKind::kOptimal, p, lo - 64);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_THAT(e.what(), ::testing::HasSubstr("below the minimum any plan needs: " + format_bytes(lo)));
  }
}

TEST(RematOptimal, HandlesNinetySixBlocks) {
  GptConfig c = kConfig;
  c.layers = 96;
  ActivationProfile p = ActivationProfile::for_shape(c, 4, 64);
  for (auto& row : p.seconds) {
    for (auto& s : row) s = 1e-3;
  }
  const size_t hi = simulate(RematPlan::keep_all(96), p).peak_bytes;
  RematPlan plan = make_plan(PlannerKind::kOptimal, p, hi / 3);
  EXPECT_LE(simulate(plan, p).peak_bytes, hi / 3);
  EXPECT_GT(plan.dropped_units(), 0);
}

TEST(Remat, BudgetParsing) {
  EXPECT_EQ(parse_budget("512MiB", 0), size_t{512} << 20);
  EXPECT_EQ(parse_budget("2GiB", 0), size_t{2} << 30);
  EXPECT_EQ(parse_budget("800MB", 0), 800000000u);
  EXPECT_EQ(parse_budget("1000", 0), 1000u);
  EXPECT_EQ(parse_budget("0.5x", 1000), 500u);
  EXPECT_THROW(parse_budget("lots", 0), Error);
  EXPECT_THROW(parse_budget("5 parsecs", 0), Error);
  EXPECT_THROW(parse_budget("-1MiB", 0), Error);
  EXPECT_THROW(parse_planner("clever"), Error);
}

}  // namespace
}  // namespace triad
