// The classifier head on the GPT trunk and the adversary MLP: gradients against central differences in
// double, pooling over each sequence's own tokens only.
#include <gtest/gtest.h>

#include "gradcheck.h"
#include "triad/fairness/adversary.h"
#include "triad/fairness/classifier.h"

namespace triad::fairness {
namespace {

using triad::testing::expect_gradient;
using triad::testing::random_vector;

GptConfig tiny() {
  return {.layers = 2, .d_model = 8, .heads = 2, .seq_len = 6, .vocab = 11};
}

// A weighted sum of the logits (and of the pooled values), so that every example's gradient differs.
struct Probe {
  std::vector<double> dz, dpool;
  double value(const std::vector<double>& z, const std::vector<double>& pool, bool with_pool) const {
    double f = 0;
    for (size_t i = 0; i < z.size(); ++i) f += dz[i] * z[i];
    if (with_pool)
      for (size_t i = 0; i < pool.size(); ++i) f += dpool[i] * pool[i];
    return f;
  }
};

class ClassifierGradient : public ::testing::TestWithParam<std::tuple<Pooling, bool>> {};

TEST_P(ClassifierGradient, MatchesFiniteDifferencesInDouble) {
  const auto [pooling, with_pool] = GetParam();
  const int B = 3, T = 5;
  const GptConfig c = tiny();
  Classifier<double> model(c, pooling);
  Gpt<double> whole(c);  // the trunk's initial values come from the LM's initialisation
  model.trunk().init_weights(3);
  for (size_t i = 0; i < model.trunk().num_params(); ++i) model.trunk().params()[i] *= 10;
  model.init_head(4);
  for (double& p : model.head_params()) p += 0.3;  // every head value away from its initial 0 / 1
  const std::vector<int32_t> tokens = {1, 4, 2, 9, 3, 5, 7, 0, 0, 0, 10, 2, 6, 1, 8};
  const std::vector<int> lengths = {5, 2, 4};  // padding after each length
  Probe probe{random_vector(B, 5), random_vector(static_cast<size_t>(B) * c.d_model, 6)};

  model.zero_grads();
  model.forward(tokens.data(), lengths.data(), B, T);
  model.backward(probe.dz.data(), with_pool ? probe.dpool.data() : nullptr);
  auto& trunk = model.trunk();
  std::vector<double> trunk_grads(trunk.grads(), trunk.grads() + trunk.num_params());
  std::vector<double> head_grads = model.head_grads();
  std::vector<double> trunk_params(trunk.params(), trunk.params() + trunk.num_params());
  std::vector<double> head_params = model.head_params();
  auto f = [&] {
    std::copy(trunk_params.begin(), trunk_params.end(), trunk.params());
    model.head_params() = head_params;
    const auto& z = model.forward(tokens.data(), lengths.data(), B, T, Gpt<double>::Pass::kInference);
    return probe.value(z, model.pooled(), with_pool);
  };
  expect_gradient("trunk", trunk_params, trunk_grads, f, 1e-5, 300);  // central differences of 10x weights
  expect_gradient("head", head_params, head_grads, f, 1e-5, 100);
}

INSTANTIATE_TEST_SUITE_P(Pooling, ClassifierGradient,
                         ::testing::Combine(::testing::Values(Pooling::kMean, Pooling::kLast),
                                            ::testing::Bool()));

// Padding is never read: changing the tokens after a sequence's length leaves its logit as it was, and a
// sequence pooled over its last token equals the same sequence alone without padding.
TEST(Classifier, IgnoresPadding) {
  const GptConfig c = tiny();
  Classifier<float> model(c, Pooling::kMean);
  model.trunk().init_weights(1);
  model.init_head(2);
  std::vector<int32_t> a = {1, 2, 3, 0, 0, 4, 5, 6, 7, 8};
  std::vector<int32_t> b = {1, 2, 3, 9, 10, 4, 5, 6, 7, 8};
  const std::vector<int> lengths = {3, 5};
  const std::vector<float> za = model.forward(a.data(), lengths.data(), 2, 5, Gpt<float>::Pass::kInference);
  const std::vector<float> zb = model.forward(b.data(), lengths.data(), 2, 5, Gpt<float>::Pass::kInference);
  EXPECT_EQ(za, zb);
  const int three = 3;
  const std::vector<float> alone = model.forward(a.data(), &three, 1, 3, Gpt<float>::Pass::kInference);
  EXPECT_NEAR(alone[0], za[0], 1e-5f);
}

TEST(Adversary, GradientMatchesFiniteDifferencesInDouble) {
  const int N = 6, in = 3, K = 4;
  Adversary<double> adversary(in, K, 7);
  std::vector<double> x = random_vector(static_cast<size_t>(N) * in, 8, 2.0);
  const std::vector<int> targets = {0, 3, -1, 2, 1, 3};  // one row without a target
  adversary.forward(x.data(), targets.data(), N);
  std::vector<double> dx(x.size());
  adversary.backward(dx.data());
  std::vector<double> params = adversary.params(), grads = adversary.grads();
  auto f = [&] {
    adversary.params() = params;
    return adversary.forward(x.data(), targets.data(), N);
  };
  expect_gradient("adversary params", params, grads, f, 1e-6, 400);
  expect_gradient("adversary input", x, dx, f);
  for (int j = 0; j < in; ++j) EXPECT_EQ(dx[2 * in + j], 0.0) << "the row without a target";
}

}  // namespace
}  // namespace triad::fairness
