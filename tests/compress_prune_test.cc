// Pruning (src/triad/compress/prune.h) and the narrower MLP it produces (GptConfig::mlp_width).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "gradcheck.h"
#include "tiny_gpt.h"
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

// Units whose output column is zero add nothing: pruning exactly those leaves the loss unchanged, and the
// kept units keep their order and values.
TEST(CompressPrune, RemovingDeadUnitsKeepsTheFunction) {
  GptConfig c = tiny();
  Gpt<float> model(c);
  model.init_weights(5);
  for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] *= 10;
  const ParameterLayout& layout = model.layout();
  const int C = c.d_model, F = c.mlp(), width = 20;
  Rng rng(3);
  std::vector<std::vector<int>> dead(2);
  for (int l = 0; l < 2; ++l) {
    std::vector<int> units(F);
    std::iota(units.begin(), units.end(), 0);
    for (int i = F - 1; i > 0; --i) std::swap(units[i], units[static_cast<int>(rng.uniform() * (i + 1))]);
    units.resize(F - width);
    float* proj = model.params() + layout.find("h." + std::to_string(l) + ".mlp.proj.weight")->offset;
    for (int j : units)
      for (int r = 0; r < C; ++r) proj[r * F + j] = 0;
    std::sort(units.begin(), units.end());
    dead[l] = units;
  }
  const int B = 2, T = 6;
  auto inputs = tokens(B * T, c.vocab, 1), targets = tokens(B * T, c.vocab, 2);
  const double before = model.forward(inputs.data(), targets.data(), B, T, Gpt<float>::Pass::kInference);

  const MlpPruning p = prune_mlp_units(c, model.params(), width);
  ASSERT_EQ(p.config.mlp(), width);
  Gpt<float> pruned(p.config);
  ASSERT_EQ(p.source.size(), pruned.num_params());
  const std::vector<float> values = gather(p.source, model.params());
  std::copy(values.begin(), values.end(), pruned.params());
  for (int l = 0; l < 2; ++l) {
    for (int j : p.kept[l]) EXPECT_FALSE(std::binary_search(dead[l].begin(), dead[l].end(), j));
    EXPECT_TRUE(std::is_sorted(p.kept[l].begin(), p.kept[l].end()));
  }
  const double after = pruned.forward(inputs.data(), targets.data(), B, T, Gpt<float>::Pass::kInference);
  EXPECT_NEAR(after, before, 1e-5);
  // The fp32 decoder runs the narrower MLP too.
  KvDecoder decoder(pruned);
  EXPECT_EQ(decoder.step(3).size(), static_cast<size_t>(c.vocab));
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
