// DP-SGD's mechanism (train/dp_sgd.h): exact per-example gradients (against PyTorch per-sample
// gradients, and summing to the batch gradient), clipping, noise, and Poisson sampling.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>

#include "test_util.h"
#include "triad/core/file_io.h"
#include "triad/core/parallel.h"
#include "triad/core/safetensors.h"
#include "triad/data/sampler.h"
#include "triad/kernels/vector_ops.h"
#include "triad/model/gpt.h"
#include "triad/train/dp_sgd.h"

namespace triad {
namespace {

const GptConfig kConfig{.layers = 2, .d_model = 32, .heads = 2, .seq_len = 24, .vocab = 97};
constexpr int kT = 20;

// `rows` windows of kT + 1 tokens, different in every row.
std::vector<int32_t> make_windows(int rows) {
  std::vector<int32_t> w(static_cast<size_t>(rows) * (kT + 1));
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<int32_t>((i * 37 + 11 + i * i % 13) % kConfig.vocab);
  return w;
}

std::unique_ptr<Gpt<float>> make_model() {
  auto model = std::make_unique<Gpt<float>>(kConfig);
  model->init_weights(5);
  for (size_t i = 0; i < model->num_params(); ++i) model->params()[i] *= 3;  // livelier than the 0.02 init
  return model;
}

double rel_diff(const float* a, const float* b, size_t n) {
  double d = 0, s = 0;
  for (size_t i = 0; i < n; ++i) {
    d += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    s += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(d / s);
}

TEST(DpSgd, UnclippedNoiselessPerExampleGradientsSumToTheBatchGradient) {
  set_threads(2);
  const int B = 5;
  auto model = make_model();
  const size_t P = model->num_params();
  std::vector<int32_t> windows = make_windows(B), inputs(B * kT), targets(B * kT);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < kT; ++t) {
      inputs[b * kT + t] = windows[b * (kT + 1) + t];
      targets[b * kT + t] = windows[b * (kT + 1) + t + 1];
    }
  }
  model->zero_grads();
  const double batch_loss = model->forward(inputs.data(), targets.data(), B, kT);
  model->backward(1.0f / (B * kT));
  std::vector<float> batch(model->grads(), model->grads() + P);

  std::vector<float> sum;
  DpBatchStats stats = privatized_gradient(*model, windows.data(), B, kT, /*clip=*/1e30, /*sigma=*/0,
                                           /*expected_batch=*/B, /*key=*/0, &sum);
  EXPECT_EQ(stats.examples, B);
  EXPECT_EQ(stats.clipped, 0);
  EXPECT_NEAR(stats.loss, batch_loss, 1e-6 * batch_loss);
  EXPECT_LT(rel_diff(model->grads(), batch.data(), P), 1e-5);
  set_threads(1);
}

TEST(DpSgd, ASmallClipNormBoundsEveryExamplesContribution) {
  set_threads(2);
  const int B = 4;
  auto model = make_model();
  const size_t P = model->num_params();
  std::vector<int32_t> windows = make_windows(B);
  std::vector<float> sum;
  std::vector<std::vector<float>> raw;
  std::vector<double> norms;
  for (int i = 0; i < B; ++i) {
    privatized_gradient(*model, windows.data() + i * (kT + 1), 1, kT, 1e30, 0, 1, 0, &sum);
    raw.emplace_back(model->grads(), model->grads() + P);
    norms.push_back(global_norm(model->grads(), P));
  }
  const double clip = 0.25 * *std::min_element(norms.begin(), norms.end());
  for (int i = 0; i < B; ++i) {
    DpBatchStats one = privatized_gradient(*model, windows.data() + i * (kT + 1), 1, kT, clip, 0, 1, 0, &sum);
    EXPECT_EQ(one.clipped, 1);
    EXPECT_NEAR(one.norms[0], norms[i], 1e-9 * norms[i]);
    EXPECT_NEAR(global_norm(model->grads(), P), clip, 1e-5 * clip) << "example " << i;
    // Clipping rescales; it does not turn the gradient.
    std::vector<float> expected(P);
    for (size_t j = 0; j < P; ++j) expected[j] = static_cast<float>(raw[i][j] * (clip / norms[i]));
    EXPECT_LT(rel_diff(model->grads(), expected.data(), P), 1e-6);
  }
  DpBatchStats all = privatized_gradient(*model, windows.data(), B, kT, clip, 0, B, 0, &sum);
  EXPECT_EQ(all.clipped, B);
  EXPECT_LE(global_norm(model->grads(), P), clip * (1 + 1e-6));  // the mean of vectors of norm C
  set_threads(1);
}

TEST(DpSgd, NoiseIsGaussianWithTheRightScaleAndIndependentOfThreads) {
  const size_t n = 300001;  // odd, over several 64Ki blocks
  const double stddev = 2.5;
  std::vector<float> a(n, 0.0f), b(n, 0.0f), c(n, 0.0f);
  set_threads(1);
  add_gaussian_noise(a.data(), n, stddev, 42);
  set_threads(2);
  add_gaussian_noise(b.data(), n, stddev, 42);
  add_gaussian_noise(c.data(), n, stddev, 43);
  set_threads(1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double mean = 0, var = 0, fourth = 0;
  for (float x : a) mean += x;
  mean /= n;
  for (float x : a) {
    var += (x - mean) * (x - mean);
    fourth += std::pow(x - mean, 4);
  }
  var /= n;
  fourth /= n;
  EXPECT_NEAR(mean, 0, 5 * stddev / std::sqrt(n));
  EXPECT_NEAR(std::sqrt(var), stddev, 0.01 * stddev);
  EXPECT_NEAR(fourth / (var * var), 3.0, 0.05);  // the kurtosis of a normal distribution

  // Through the mechanism: with no example the gradient is the noise alone, σC / (qN) per coordinate.
  auto model = make_model();
  std::vector<float> sum;
  privatized_gradient(*model, nullptr, 0, kT, /*clip=*/0.5, /*sigma=*/3.0, /*expected_batch=*/2, 7, &sum);
  const size_t P = model->num_params();
  EXPECT_NEAR(global_norm(model->grads(), P) / std::sqrt(static_cast<double>(P)), 3.0 * 0.5 / 2, 0.02);
}

// Two ranks' shares of a step, averaged as GradSync does, are one process's step: the same batch, each
// example once, the noise once (rank 0's).
TEST(DpSgd, TheRanksSharesAverageToOneProcesssPrivatisedGradient) {
  const GptConfig config{.layers = 1, .d_model = 16, .heads = 2, .seq_len = 16, .vocab = 400};
  Gpt<float> model(config);
  model.init_weights(3);
  TokenDataset data = TokenDataset::open(testing::fixture_data(), "train");
  Sampler sampler(data, {.seq_len = 16});
  const DpSecrets secrets{{1, 2, 3, 4}, {5, 6, 7, 8}};
  const size_t P = model.num_params();
  auto gradient = [&](int rank, int world, DpBatchStats* stats) {
    DpSgd dp(DpSgdConfig{.noise_multiplier = 1.0,
                         .clip = 0.05,
                         .delta = 1e-5,
                         .expected_batch = 8,
                         .rank = rank,
                         .world = world},
             sampler, secrets);
    *stats = dp.step(model, 16);
    return std::vector<float>(model.grads(), model.grads() + P);
  };
  DpBatchStats whole, first, second;
  std::vector<float> one = gradient(0, 1, &whole);
  std::vector<float> rank0 = gradient(0, 2, &first), rank1 = gradient(1, 2, &second);
  ASSERT_GE(whole.examples, 2) << "both ranks have examples";
  EXPECT_EQ(first.examples + second.examples, whole.examples);
  EXPECT_EQ(first.clipped + second.clipped, whole.clipped);
  EXPECT_GT(whole.clipped, 0);
  std::vector<float> average(P);
  for (size_t i = 0; i < P; ++i) average[i] = (rank0[i] + rank1[i]) / 2;
  EXPECT_LT(rel_diff(average.data(), one.data(), P), 1e-5);
  EXPECT_GT(rel_diff(rank0.data(), one.data(), P), 0.1) << "rank 1's examples matter";
}

TEST(DpSgd, PoissonSamplingHasTheRightMeanAndIsDeterministicForAState) {
  const uint64_t N = 1000;
  const double q = 0.05;
  const int steps = 2000;
  PoissonSampler sampler(N, q, {1, 2, 3, 4});
  std::vector<uint64_t> batch, counts(N, 0);
  double sum = 0, sum2 = 0;
  for (int s = 0; s < steps; ++s) {
    sampler.next(&batch);
    ASSERT_TRUE(std::is_sorted(batch.begin(), batch.end()));
    ASSERT_TRUE(std::adjacent_find(batch.begin(), batch.end()) == batch.end());
    for (uint64_t i : batch) {
      ASSERT_LT(i, N);
      ++counts[i];
    }
    sum += batch.size();
    sum2 += static_cast<double>(batch.size()) * batch.size();
  }
  // Batch size ~ Binomial(N, q): mean qN = 50 (standard error 0.15), variance qN(1 - q) = 47.5.
  const double mean = sum / steps, var = sum2 / steps - mean * mean;
  EXPECT_NEAR(mean, q * N, 4 * std::sqrt(q * (1 - q) * N / steps));
  EXPECT_NEAR(var, q * (1 - q) * N, 0.15 * q * (1 - q) * N);
  // Every window is included with probability q: 100 ± 9.7 times each.
  for (uint64_t i = 0; i < N; ++i) {
    EXPECT_NEAR(static_cast<double>(counts[i]), q * steps, 6 * std::sqrt(q * (1 - q) * steps))
        << "window " << i;
  }

  // The same state gives the same batches; a saved state resumes the exact sequence.
  PoissonSampler a(N, q, {9, 8, 7, 6}), b(N, q, {9, 8, 7, 6});
  std::vector<uint64_t> x, y;
  for (int s = 0; s < 5; ++s) {
    a.next(&x);
    b.next(&y);
    EXPECT_EQ(x, y);
  }
  PoissonSampler resumed(N, q, a.state());
  for (int s = 0; s < 5; ++s) {
    a.next(&x);
    resumed.next(&y);
    EXPECT_EQ(x, y);
  }
  PoissonSampler other(N, q, {1, 1, 1, 1});
  other.next(&y);
  a.next(&x);
  EXPECT_NE(x, y);

  PoissonSampler all(7, 1.0, {1, 2, 3, 4});
  all.next(&x);
  EXPECT_EQ(x, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(DpSgd, PerExampleGradientsMatchPyTorchPerSampleGradients) {
  ASSERT_EQ(std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null"), 0)
      << "Debian's python3-torch is required (scripts/setup installs it)";
  set_threads(2);
  const int B = 4;
  auto model = make_model();
  const size_t P = model->num_params();
  std::vector<int32_t> windows = make_windows(B);

  testing::TempDir dir;
  std::vector<SafeTensor> weights;
  for (const TensorSpec& t : model->layout().tensors())
    weights.push_back({t.name, t.shape, model->params() + t.offset});
  write_safetensors(dir / "weights.safetensors", weights);
  write_file_atomic(dir / "config.json", kConfig.to_json().dump());
  nlohmann::json tokens = {{"inputs", nlohmann::json::array()}, {"targets", nlohmann::json::array()}};
  for (int b = 0; b < B; ++b) {
    const int32_t* w = windows.data() + b * (kT + 1);
    tokens["inputs"].push_back(std::vector<int32_t>(w, w + kT));
    tokens["targets"].push_back(std::vector<int32_t>(w + 1, w + kT + 1));
  }
  write_file_atomic(dir / "tokens.json", tokens.dump());

  // Every example's own gradient, through the trainer's code path (a batch of one, nothing clipped).
  std::vector<float> sum;
  std::vector<std::vector<float>> ours;
  for (int b = 0; b < B; ++b) {
    privatized_gradient(*model, windows.data() + b * (kT + 1), 1, kT, 1e30, 0, 1, 0, &sum);
    ours.emplace_back(model->grads(), model->grads() + P);
  }
  // The clipped mean of the whole batch, with C between the smallest and the largest norm.
  DpBatchStats unclipped = privatized_gradient(*model, windows.data(), B, kT, 1e30, 0, B, 0, &sum);
  std::vector<double> sorted = unclipped.norms;
  std::sort(sorted.begin(), sorted.end());
  const double clip = 0.5 * (sorted[1] + sorted[2]);
  DpBatchStats clipped = privatized_gradient(*model, windows.data(), B, kT, clip, 0, B, 0, &sum);
  EXPECT_EQ(clipped.clipped, 2);

  std::string command = std::string("cd ") + TRIAD_TEST_DATA +
                        "/../torch && /usr/bin/python3 per_example.py " + (dir / "config.json") + " " +
                        (dir / "weights.safetensors") + " " + (dir / "tokens.json") + " " +
                        fmt::format("{:.17g}", clip) + " " + (dir / "torch.safetensors");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  SafetensorsFile reference(dir / "torch.safetensors");

  const SafeTensor& norms = reference.get("norm", {B});
  for (int b = 0; b < B; ++b) EXPECT_NEAR(unclipped.norms[b] / norms.data[b], 1.0, 1e-4) << "example " << b;
  for (const TensorSpec& t : model->layout().tensors()) {
    std::vector<int64_t> shape = {B};
    shape.insert(shape.end(), t.shape.begin(), t.shape.end());
    const SafeTensor& per_example = reference.get("grad." + t.name, shape);
    for (int b = 0; b < B; ++b) {
      EXPECT_LT(rel_diff(ours[b].data() + t.offset, per_example.data + b * t.count, t.count), 1e-4)
          << t.name << ", example " << b;
    }
    const SafeTensor& dp = reference.get("dp." + t.name, t.shape);
    EXPECT_LT(rel_diff(model->grads() + t.offset, dp.data, t.count), 1e-4) << "clipped mean, " << t.name;
  }
  set_threads(1);
}

}  // namespace
}  // namespace triad
