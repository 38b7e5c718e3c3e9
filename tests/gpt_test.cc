#include "triad/model/gpt.h"

#include <gtest/gtest.h>

#include "gradcheck.h"
#include "tiny_gpt.h"
#include "triad/core/error.h"
#include "triad/core/parallel.h"
#include "triad/model/generate.h"

namespace triad {
namespace {

TEST(Gpt, LayoutMatchesTheParameterCount) {
  GptConfig c = tiny();
  ParameterLayout layout(c);
  EXPECT_EQ(layout.count(), c.num_parameters());
  EXPECT_EQ(layout.blocks().size(), 4u);  // embed, h.0, h.1, ln_f
  size_t sum = 0;
  for (const auto& b : layout.blocks()) sum += b.count;
  EXPECT_EQ(sum, layout.count());
  EXPECT_EQ(layout.find("h.1.mlp.fc.weight")->shape, (std::vector<int64_t>{32, 8}));
  EXPECT_TRUE(layout.find("h.0.attn.qkv.weight")->decay);
  EXPECT_FALSE(layout.find("wte.weight")->decay);
  EXPECT_FALSE(layout.find("h.0.ln_1.weight")->decay);
}

class WholeModel : public ::testing::TestWithParam<int> {};  // threads

TEST_P(WholeModel, GradientMatchesFiniteDifferencesInDouble) {
  set_threads(GetParam());
  std::vector<int> order;
  expect_loss_gradient(tiny(), 2, 5, 600, [&](int block) { order.push_back(block); });
  EXPECT_EQ(order, (std::vector<int>{3, 2, 1, 0}));  // ln_f, h.1, h.0, embed
  set_threads(1);
}

INSTANTIATE_TEST_SUITE_P(Threads, WholeModel, ::testing::Values(1, 2));

TEST(Gpt, FloatAgreesWithDoubleAndReleasesEverything) {
  const int B = 2, T = 6;
  GptConfig c = tiny();
  Gpt<double> d(c);
  Gpt<float> f(c);
  d.init_weights(5);
  f.init_weights(5);
  auto inputs = tokens(B * T, c.vocab, 4), targets = tokens(B * T, c.vocab, 5);
  double ld = d.forward(inputs.data(), targets.data(), B, T);
  double lf = f.forward(inputs.data(), targets.data(), B, T);
  EXPECT_NEAR(lf, ld, 1e-5);
  EXPECT_NEAR(ld, std::log(11.0), 0.05);  // small init: close to uniform over the vocabulary
  f.zero_grads();
  f.backward(1.0f / (B * T));
  EXPECT_EQ(f.arena().live_bytes(), 0u);
  EXPECT_GT(f.arena().peak_bytes(), 0u);
}

TEST(Gpt, RejectsTooLongSequencesAndBadTokens) {
  Gpt<float> m(tiny());
  m.init_weights(1);
  std::vector<int32_t> t(14, 1);
  EXPECT_THROW(m.forward(t.data(), t.data(), 2, 7), Error);
  t[3] = 11;
  EXPECT_THROW(m.forward(t.data(), t.data(), 2, 6), Error);
  EXPECT_THROW(GptConfig({.layers = 1, .d_model = 10, .heads = 3}).validate(), Error);
}

}  // namespace
}  // namespace triad

namespace triad {
namespace {

TEST(Generate, KvCacheLogitsMatchTheFullForward) {
  const GptConfig c{.layers = 2, .d_model = 16, .heads = 4, .seq_len = 70, .vocab = 23};
  Gpt<float> model(c);
  model.init_weights(9);
  for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] *= 5;
  const int T = 66;
  auto seq = tokens(T, c.vocab, 3);
  model.forward(seq.data(), nullptr, 1, T);
  std::vector<float> full(model.logits(), model.logits() + static_cast<size_t>(T) * c.vocab);
  model.release_activations();
  KvDecoder decoder(model);
  for (int t = 0; t < T; ++t) {
    const std::vector<float>& step = decoder.step(seq[t]);
    for (int v = 0; v < c.vocab; ++v)
      ASSERT_NEAR(step[v], full[static_cast<size_t>(t) * c.vocab + v], 2e-4) << t;
  }
}

TEST(Generate, GreedyIsDeterministicAndTopKRestricts) {
  std::vector<float> logits = {0.1f, 3.0f, 2.9f, -1.0f};
  Rng rng(1);
  EXPECT_EQ(sample_token(logits, {.temperature = 0}, rng), 1);
  for (int i = 0; i < 200; ++i) {
    int32_t t = sample_token(logits, {.temperature = 1.0f, .top_k = 2}, rng);
    ASSERT_TRUE(t == 1 || t == 2);
  }
}

}  // namespace
}  // namespace triad
