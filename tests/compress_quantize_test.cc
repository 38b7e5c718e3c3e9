// Int8 post-training quantization (src/triad/compress/int8_linear.h, int8_model.h): the quantized matrix
// product against the float one within the derived int8 error bound, and the int8 model against the float
// model.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "triad/compress/int8_linear.h"
#include "triad/compress/int8_model.h"
#include "triad/core/rng.h"
#include "triad/model/generate.h"
#include "triad/model/gpt.h"

namespace triad {
namespace {

// Gaussian values; row r scaled by 10^(r % 4 - 2), so rows span four orders of magnitude and a single
// per-tensor scale would lose the small rows (the per-row bound below would then fail).
std::vector<float> rows_of_mixed_scale(int rows, int cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> x(static_cast<size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    const double scale = std::pow(10.0, r % 4 - 2);
    for (int c = 0; c < cols; ++c)
      x[static_cast<size_t>(r) * cols + c] = static_cast<float>(scale * rng.normal());
  }
  return x;
}

TEST(CompressQuantize, RowsRoundToTheNearestStepOfTheirOwnScale) {
  const int R = 9, K = 37;
  std::vector<float> x = rows_of_mixed_scale(R, K, 1);
  std::fill(x.begin() + 4 * K, x.begin() + 5 * K, 0.0f);  // a zero row
  std::vector<int8_t> q(x.size());
  std::vector<float> s(R);
  quantize_rows(x.data(), R, K, q.data(), s.data());
  for (int r = 0; r < R; ++r) {
    float max = 0;
    int qmax = 0;
    for (int k = 0; k < K; ++k) {
      max = std::max(max, std::fabs(x[r * K + k]));
      qmax = std::max(qmax, std::abs(static_cast<int>(q[r * K + k])));
    }
    EXPECT_FLOAT_EQ(s[r], max / 127.0f) << "row " << r;
    EXPECT_EQ(qmax, r == 4 ? 0 : 127) << "row " << r;  // the largest value maps to ±127
    for (int k = 0; k < K; ++k) {
      EXPECT_LE(std::fabs(s[r] * q[r * K + k] - x[r * K + k]), 0.5f * s[r] * (1 + 1e-5f)) << r << "," << k;
    }
  }
}

// One product at several row counts (each a primitive of its own), odd sizes that are no multiple of a
// vector width.
TEST(CompressQuantize, ProductIsWithinTheInt8ErrorBoundOfTheFloatProduct) {
  const int N = 40, K = 200;
  const std::vector<float> w = rows_of_mixed_scale(N, K, 2);
  std::vector<float> bias(N);
  for (int n = 0; n < N; ++n) bias[n] = 0.1f * n;
  Int8Linear linear(w.data(), N, K);
  for (int M : {1, 33, 1}) {
    const std::vector<float> x = rows_of_mixed_scale(M, K, 3 + M);
    std::vector<float> y(static_cast<size_t>(M) * N);
    linear.forward(y.data(), x.data(), bias.data(), M);
    std::vector<int8_t> xq(x.size());
    std::vector<float> xs(M);
    quantize_rows(x.data(), M, K, xq.data(), xs.data());
    double worst_ratio = 0;
    for (int m = 0; m < M; ++m) {
      for (int n = 0; n < N; ++n) {
        double exact = bias[n], dequantized = bias[n];
        for (int k = 0; k < K; ++k) {
          exact += static_cast<double>(x[m * K + k]) * w[n * K + k];
          dequantized +=
              static_cast<double>(xs[m]) * xq[m * K + k] * linear.scales()[n] * linear.weights()[n * K + k];
        }
        const double got = y[m * N + n];
        // oneDNN's integer product is exact: what is left is the float rescale and bias.
        EXPECT_NEAR(got, dequantized, 1e-5 * (std::fabs(dequantized) + std::fabs(bias[n])) + 1e-30)
            << "m " << m << " n " << n;
        const double bound =
            int8_error_bound(x.data() + m * K, xs[m], w.data() + n * K, linear.scales()[n], K);
        const double error = std::fabs(got - exact);
        EXPECT_LE(error, bound * (1 + 1e-4) + 1e-6 * std::fabs(bias[n])) << "m " << m << " n " << n;
        if (bound > 0) worst_ratio = std::max(worst_ratio, error / bound);
      }
    }
    // The bound is a worst case over rounding errors; random ones reach a fraction of it (about 3 standard
    // deviations, ~0.15 of the bound at K = 200) — not orders of magnitude less, or it would test nothing.
    EXPECT_GT(worst_ratio, M == 1 ? 0.02 : 0.05) << "M " << M;
  }
}

GptConfig tiny() {
  return {.layers = 2, .d_model = 32, .heads = 4, .seq_len = 16, .vocab = 96};
}

// The int8 model's loss is near the float model's, and its KV decoder computes the same logits as its
// whole-sequence forward (activations are quantized per row, so each position sees the same int8 values).
void expect_int8_matches_float(const GptConfig& config) {
  Gpt<float> model(config);
  model.init_weights(7);
  // Larger weights than the initialisation's, so that the loss depends on them.
  for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] *= 3;
  const int B = 2, T = 16;
  Rng rng(9);
  std::vector<int32_t> inputs(B * T), targets(B * T);
  for (auto& t : inputs) t = static_cast<int32_t>(rng.uniform() * 96);
  for (auto& t : targets) t = static_cast<int32_t>(rng.uniform() * 96);
  const double fp32 = model.forward(inputs.data(), targets.data(), B, T, Gpt<float>::Pass::kInference);
  Int8Gpt int8(model);
  const double q = int8.loss(inputs.data(), targets.data(), B, T);
  EXPECT_NE(q, fp32);
  EXPECT_NEAR(q, fp32, 0.01 * fp32);
  EXPECT_LT(int8.weight_bytes(), model.num_params() * sizeof(float) / 3);

  for (int b = 0; b < B; ++b) {
    Int8Decoder decoder(int8);
    double sum = 0;
    for (int t = 0; t < T; ++t) {
      const std::vector<float>& logits = decoder.step(inputs[b * T + t]);
      double max = -INFINITY, z = 0;
      for (float l : logits) max = std::max<double>(max, l);
      for (float l : logits) z += std::exp(l - max);
      sum += max + std::log(z) - logits[targets[b * T + t]];
    }
    const double batch_loss = int8.loss(inputs.data() + b * T, targets.data() + b * T, 1, T);
    EXPECT_NEAR(sum / T, batch_loss, 1e-4) << "sequence " << b;
  }
}

TEST(CompressQuantize, Int8ModelMatchesFloatModelAndItsDecoder) {
  expect_int8_matches_float(tiny());
}

// After head pruning: 3 heads of 8 channels, an attention width of 24 against d_model 32.
TEST(CompressQuantize, Int8ModelWithAHeadSizeMatchesFloatModel) {
  GptConfig c = tiny();
  c.heads = 3;
  c.head_size = 8;
  expect_int8_matches_float(c);
}

}  // namespace
}  // namespace triad
