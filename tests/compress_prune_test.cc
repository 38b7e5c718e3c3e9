// Pruning (src/triad/compress/prune.h) and the narrower shapes it produces: the MLP width
// (GptConfig::mlp_width) and an attention width NH·HS other than C (GptConfig::head_size).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>
#include <vector>

#include "gradcheck.h"
#include "tiny_gpt.h"
#include "train_test_util.h"
#include "triad/compress/prune.h"
#include "triad/core/error.h"
#include "triad/core/rng.h"
#include "triad/model/generate.h"
#include "triad/model/gpt.h"
#include "triad/model/params.h"

namespace triad {
namespace {

// The backward with an MLP narrower than 4·C (and one narrower than q|k|v's 3·C, which then sizes the
// scratch) against finite differences.
TEST(CompressPrune, NarrowMlpGradientMatchesFiniteDifferences) {
  for (int width : {13, 40}) {
    GptConfig c = tiny();
    c.mlp_width = width;
    EXPECT_EQ(ParameterLayout(c).count(), c.num_parameters());
    EXPECT_EQ(ParameterLayout(c).find("h.1.mlp.proj.weight")->shape, (std::vector<int64_t>{8, width}));
    expect_loss_gradient(c, 2, 5, 300);
  }
}

// Attention widths NH·HS other than C against finite differences: wider (3·4 = 12 > 8, and q|k|v's 36 wider
// than the MLP's 32, so they size the scratch) and narrower (2·3 = 6).
TEST(CompressPrune, HeadSizeGradientMatchesFiniteDifferences) {
  for (auto [heads, head_size] : {std::pair{3, 4}, std::pair{2, 3}}) {
    GptConfig c = tiny();
    c.heads = heads;
    c.head_size = head_size;
    const int64_t A = heads * head_size, C = c.d_model;
    ASSERT_EQ(c.attention_width(), A);
    EXPECT_EQ(ParameterLayout(c).count(), c.num_parameters());
    EXPECT_EQ(ParameterLayout(c).find("h.0.attn.qkv.weight")->shape, (std::vector<int64_t>{3 * A, C}));
    EXPECT_EQ(ParameterLayout(c).find("h.0.attn.qkv.bias")->shape, (std::vector<int64_t>{3 * A}));
    EXPECT_EQ(ParameterLayout(c).find("h.0.attn.proj.weight")->shape, (std::vector<int64_t>{C, A}));
    expect_loss_gradient(c, 2, 5, 300);
  }
}

// head_size is written only when set, so checkpoints from before it load as today's shape (C / NH).
TEST(CompressPrune, HeadSizeIsRecordedOnlyWhenSet) {
  GptConfig c = tiny();
  nlohmann::json j = c.to_json();
  EXPECT_FALSE(j.contains("head_size"));
  j.erase("mlp_width");  // older still: before MLP pruning
  EXPECT_EQ(GptConfig::from_json(j, "old.json"), c);
  c.heads = 3;  // 8 channels do not divide into 3 heads; with a head size they need not
  c.head_size = 4;
  c.validate();
  EXPECT_EQ(c.to_json()["head_size"], 4);
  EXPECT_EQ(GptConfig::from_json(c.to_json(), "new.json"), c);
  EXPECT_THAT(c.describe(), ::testing::HasSubstr("h3 hs4"));
  c.head_size = 0;
  EXPECT_THAT([&] { c.validate(); }, ::testing::ThrowsMessage<Error>(::testing::HasSubstr("--heads 3")));
  c.head_size = -1;
  EXPECT_THAT([&] { c.validate(); }, ::testing::ThrowsMessage<Error>(::testing::HasSubstr("--head-size")));
}

TEST(CompressPrune, WidthWithHeadsRemovedReachesTheFraction) {
  const GptConfig c;  // L4 d256 h4: a head per layer is 4·64·256 + 3·64 parameters, about 5 % of the model
  const GptConfig two_fewer = without_heads(c, 2);
  EXPECT_EQ(two_fewer.heads, 2);
  EXPECT_EQ(two_fewer.head_size, 64);
  EXPECT_EQ(without_heads(c, 0), c);
  EXPECT_THROW(without_heads(c, 4), Error);  // one head must stay
  const int width = mlp_width_removing(c, 0.3, 2);
  GptConfig pruned = two_fewer, wider = two_fewer;
  pruned.mlp_width = width;
  wider.mlp_width = width + 1;
  EXPECT_LE(pruned.parameter_count(), 0.7 * c.parameter_count());
  EXPECT_GT(wider.parameter_count(), 0.7 * c.parameter_count());
  EXPECT_GT(width, mlp_width_removing(c, 0.3));  // the heads took part of the 30 %
  EXPECT_THAT([&] { mlp_width_removing(c, 0.05, 2); },
              ::testing::ThrowsMessage<Error>(::testing::HasSubstr("--remove-heads 2 alone removes")));
}

TEST(CompressPrune, WidthForAFractionIsTheWidestUnderIt) {
  const GptConfig c;  // the default model: L4 d256, V8192
  const int width = mlp_width_removing(c, 0.3);
  GptConfig pruned = c, wider = c;
  pruned.mlp_width = width;
  wider.mlp_width = width + 1;
  EXPECT_LE(pruned.parameter_count(), 0.7 * c.parameter_count());
  EXPECT_GT(wider.parameter_count(), 0.7 * c.parameter_count());
  EXPECT_THROW(mlp_width_removing(c, 0.6), Error);  // the MLPs are under 60 % of the model
}

// `k` of 0 .. n − 1 at random, ascending.
std::vector<int> random_subset(int n, int k, Rng& rng) {
  std::vector<int> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  for (int i = n - 1; i > 0; --i) std::swap(all[i], all[static_cast<int>(rng.uniform() * (i + 1))]);
  all.resize(static_cast<size_t>(k));
  std::sort(all.begin(), all.end());
  return all;
}

// The decoder's cross-entropy at each position of `inputs` against `targets`, as Gpt::losses() has them.
std::vector<double> decoder_losses(const Gpt<float>& model, const std::vector<int32_t>& inputs,
                                   const std::vector<int32_t>& targets) {
  KvDecoder decoder(model);
  std::vector<double> out;
  for (size_t t = 0; t < inputs.size(); ++t) {
    const std::vector<float>& logits = decoder.step(inputs[t]);
    double max = -INFINITY, z = 0;
    for (float l : logits) max = std::max<double>(max, l);
    for (float l : logits) z += std::exp(l - max);
    out.push_back(max + std::log(z) - logits[targets[t]]);
  }
  return out;
}

// Heads and units whose output columns are zero add nothing: pruning exactly those, in one call, leaves the
// loss unchanged; the kept ones keep their order and values, and the result has the narrower shapes.
TEST(CompressPrune, RemovingSilentHeadsAndUnitsKeepsTheFunction) {
  GptConfig c = tiny();
  c.heads = 4;  // HS 2
  Gpt<float> model(c);
  model.init_weights(5);
  for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] *= 10;
  const ParameterLayout& layout = model.layout();
  const int C = c.d_model, F = c.mlp(), HS = c.head_dim(), A = c.attention_width(), heads = 2, width = 20;
  Rng rng(3);
  std::vector<std::vector<int>> dead_heads, dead_units;
  for (int l = 0; l < c.layers; ++l) {
    const std::string prefix = "h." + std::to_string(l) + ".";
    dead_heads.push_back(random_subset(c.heads, c.heads - heads, rng));
    dead_units.push_back(random_subset(F, F - width, rng));
    float* attn = model.params() + layout.find(prefix + "attn.proj.weight")->offset;  // (C, A)
    for (int h : dead_heads[l])
      for (int r = 0; r < C; ++r)
        for (int i = 0; i < HS; ++i) attn[r * A + h * HS + i] = 0;
    float* mlp = model.params() + layout.find(prefix + "mlp.proj.weight")->offset;  // (C, F)
    for (int j : dead_units[l])
      for (int r = 0; r < C; ++r) mlp[r * F + j] = 0;
  }
  const int B = 2, T = 6;
  auto inputs = tokens(B * T, c.vocab, 1), targets = tokens(B * T, c.vocab, 2);
  const double before = model.forward(inputs.data(), targets.data(), B, T, Gpt<float>::Pass::kInference);

  const StructuredPruning p = prune_structure(c, model.params(), heads, width);
  EXPECT_EQ(p.config.heads, heads);
  EXPECT_EQ(p.config.head_size, HS);
  EXPECT_EQ(p.config.mlp(), width);
  const size_t removed_per_layer = static_cast<size_t>(c.heads - heads) * (4 * HS * C + 3 * HS) +
                                   static_cast<size_t>(F - width) * (2 * C + 1);
  EXPECT_EQ(p.config.num_parameters(), c.num_parameters() - c.layers * removed_per_layer);
  Gpt<float> pruned(p.config);
  ASSERT_EQ(p.source.size(), pruned.num_params());
  EXPECT_EQ(pruned.layout().find("h.1.attn.qkv.weight")->shape, (std::vector<int64_t>{3 * heads * HS, C}));
  EXPECT_EQ(pruned.layout().find("h.1.attn.proj.weight")->shape, (std::vector<int64_t>{C, heads * HS}));
  const std::vector<float> values = gather(p.source, model.params());
  std::copy(values.begin(), values.end(), pruned.params());
  for (int l = 0; l < c.layers; ++l) {
    std::vector<int> kept_heads(p.kept_heads[l]), kept_units(p.kept_units[l]), none;
    std::set_intersection(kept_heads.begin(), kept_heads.end(), dead_heads[l].begin(), dead_heads[l].end(),
                          std::back_inserter(none));
    std::set_intersection(kept_units.begin(), kept_units.end(), dead_units[l].begin(), dead_units[l].end(),
                          std::back_inserter(none));
    EXPECT_TRUE(none.empty()) << "layer " << l;
    EXPECT_TRUE(std::is_sorted(kept_heads.begin(), kept_heads.end()));
    EXPECT_TRUE(std::is_sorted(kept_units.begin(), kept_units.end()));
  }
  const double after = pruned.forward(inputs.data(), targets.data(), B, T, Gpt<float>::Pass::kInference);
  EXPECT_NEAR(after, before, 1e-5);
  // The fp32 KV-cache decoder runs the narrower attention and MLP: the same per-position losses.
  const std::vector<float> forward_losses(pruned.losses(), pruned.losses() + T);  // sequence 0
  const std::vector<double> decoded =
      decoder_losses(pruned, std::vector<int32_t>(inputs.begin(), inputs.begin() + T),
                     std::vector<int32_t>(targets.begin(), targets.begin() + T));
  for (int t = 0; t < T; ++t) EXPECT_NEAR(decoded[t], forward_losses[t], 1e-4) << "position " << t;
}

// Each layer keeps its own heads by ‖v‖·‖proj‖: scaling a head's projection columns up makes it kept.
TEST(CompressPrune, EachLayerKeepsItsLargestHeads) {
  GptConfig c = tiny();
  c.heads = 4;
  Gpt<float> model(c);
  model.init_weights(6);
  const int C = c.d_model, HS = c.head_dim(), A = c.attention_width();
  const std::vector<std::vector<int>> loud = {{1, 2}, {0, 3}};
  for (int l = 0; l < c.layers; ++l) {
    float* proj =
        model.params() + model.layout().find("h." + std::to_string(l) + ".attn.proj.weight")->offset;
    for (int h : loud[l])
      for (int r = 0; r < C; ++r)
        for (int i = 0; i < HS; ++i) proj[r * A + h * HS + i] *= 100;
  }
  const StructuredPruning p = prune_structure(c, model.params(), 2, c.mlp());
  EXPECT_EQ(p.kept_heads, loud);
  EXPECT_EQ(p.config.mlp_width, c.mlp());
  // q of kept head 1 of layer 0 is its second head's: source rows HS .. 2 HS − 1 → pruned rows HS ..
  const TensorSpec& from = *model.layout().find("h.0.attn.qkv.weight");
  const ParameterLayout pruned_layout(p.config);  // outlives `to`, a reference into it
  const TensorSpec& to = *pruned_layout.find("h.0.attn.qkv.weight");
  EXPECT_EQ(p.source[to.offset + static_cast<size_t>(HS) * C], from.offset + static_cast<size_t>(2 * HS) * C);
  // v of pruned head 0 (source head 1): row 2·(2 HS) of the pruned, 2 A + HS of the source.
  EXPECT_EQ(p.source[to.offset + static_cast<size_t>(4 * HS) * C],
            from.offset + static_cast<size_t>(2 * A + HS) * C);
}

// `triad prune --remove-heads K --remove F` writes a run of the narrower shape that `train --resume`
// fine-tunes from the source's step.
TEST(CompressPrune, PrunedHeadsRunFineTunes) {
  testing::TempDir dir;
  const std::string run = dir / "run", pruned = dir / "pruned";
  auto r = testing::run_triad(testing::train_args(run, "--heads 4 --steps 4 --eval-every 0"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = testing::run_triad("prune --model " + run + " --remove-heads 4 --out " + pruned);
  EXPECT_THAT(r, testing::RefusedWith("--remove-heads must be from 0 to 3"));
  r = testing::run_triad("prune --model " + run + " --remove-heads 2 --remove 0.2 --out " + pruned);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["heads"], 2);
  EXPECT_EQ(summary["head_size"], 8);  // d32 / 4 heads
  EXPECT_LT(summary["mlp_width"].get<int>(), 128);
  EXPECT_GE(summary["removed_fraction"].get<double>(), 0.2);
  r = testing::run_triad("train -q --resume " + pruned + " --steps 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<double> losses = testing::losses(pruned);
  ASSERT_EQ(losses.size(), 2u);  // steps 5 and 6
  for (double l : losses) EXPECT_TRUE(std::isfinite(l) && l > 0);
}

TEST(CompressPrune, MagnitudeZeroesTheSmallestFractionOfEachLinearWeight) {
  GptConfig c = tiny();
  Gpt<float> model(c);
  model.init_weights(8);
  std::vector<float> params(model.params(), model.params() + model.num_params());
  const size_t zeros = prune_magnitude(c, params.data(), 0.5);
  const ParameterLayout layout(c);
  size_t expected = 0;
  for (const TensorSpec& t : layout.tensors()) {
    const float *before = model.params() + t.offset, *after = params.data() + t.offset;
    if (!t.decay) {
      EXPECT_TRUE(std::equal(before, before + t.count, after)) << t.name;
      continue;
    }
    expected += t.count / 2;
    float largest_zeroed = 0, smallest_kept = INFINITY;
    size_t z = 0;
    for (size_t i = 0; i < t.count; ++i) {
      if (after[i] == 0) {
        ++z;
        largest_zeroed = std::max(largest_zeroed, std::fabs(before[i]));
      } else {
        EXPECT_EQ(after[i], before[i]);
        smallest_kept = std::min(smallest_kept, std::fabs(before[i]));
      }
    }
    EXPECT_EQ(z, t.count / 2) << t.name;
    EXPECT_LE(largest_zeroed, smallest_kept) << t.name;
  }
  EXPECT_EQ(zeros, expected);
}

}  // namespace
}  // namespace triad
