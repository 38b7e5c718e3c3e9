// Parity with PyTorch (Debian's python3-torch): the same weights and tokens through tests/torch/parity.py,
// which runs an independent PyTorch implementation of the architecture in float64. Loss and every
// gradient tensor must agree to 1e-4 relative.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "triad/core/file_io.h"
#include "triad/core/parallel.h"
#include "triad/core/safetensors.h"
#include "triad/model/gpt.h"

namespace triad {
namespace {

void expect_torch_parity(const GptConfig& config) {
  ASSERT_EQ(std::system("/usr/bin/python3 -c 'import torch' 2>/dev/null"), 0)
      << "Debian's python3-torch is required (scripts/setup installs it)";
  set_threads(2);
  const int B = 3, T = 70;  // T spans two attention tiles
  Gpt<float> model(config);
  model.init_weights(11);
  for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] *= 3;  // livelier than the 0.02 init

  std::vector<int32_t> inputs(B * T), targets(B * T);
  for (int i = 0; i < B * T; ++i) {
    inputs[i] = (i * 37 + 11) % config.vocab;
    targets[i] = (i * 53 + 7) % config.vocab;
  }
  model.zero_grads();
  const double loss = model.forward(inputs.data(), targets.data(), B, T);
  model.backward(1.0f / (B * T));

  testing::TempDir dir;
  std::vector<SafeTensor> weights;
  for (const TensorSpec& t : model.layout().tensors())
    weights.push_back({t.name, t.shape, model.params() + t.offset});
  write_safetensors(dir / "weights.safetensors", weights);
  write_file_atomic(dir / "config.json", config.to_json().dump());
  nlohmann::json tokens = {{"inputs", nlohmann::json::array()}, {"targets", nlohmann::json::array()}};
  for (int b = 0; b < B; ++b) {
    tokens["inputs"].push_back(std::vector<int32_t>(inputs.begin() + b * T, inputs.begin() + (b + 1) * T));
    tokens["targets"].push_back(std::vector<int32_t>(targets.begin() + b * T, targets.begin() + (b + 1) * T));
  }
  write_file_atomic(dir / "tokens.json", tokens.dump());
  std::string command = std::string("cd ") + TRIAD_TEST_DATA + "/../torch && /usr/bin/python3 parity.py " +
                        (dir / "config.json") + " " + (dir / "weights.safetensors") + " " +
                        (dir / "tokens.json") + " " + (dir / "torch.safetensors");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  SafetensorsFile reference(dir / "torch.safetensors");
  const double torch_loss = reference.get("loss", {1}).data[0];
  EXPECT_NEAR(loss / torch_loss, 1.0, 1e-4) << loss << " vs " << torch_loss;
  for (const TensorSpec& t : model.layout().tensors()) {
    const SafeTensor& g = reference.get("grad." + t.name, t.shape);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < t.count; ++i) {
      const double ours = model.grads()[t.offset + i], theirs = g.data[i];
      diff += (ours - theirs) * (ours - theirs);
      norm += theirs * theirs;
    }
    ASSERT_GT(norm, 0) << t.name;
    EXPECT_LT(std::sqrt(diff / norm), 1e-4) << t.name;
  }
  set_threads(1);
}

TEST(TorchParity, LossAndEveryGradientMatch) {
  expect_torch_parity({.layers = 2, .d_model = 64, .heads = 4, .seq_len = 80, .vocab = 301});
}

// The shapes pruning leaves: 3 heads of 24 channels (attention width 72, not d_model) and a 100-unit MLP.
TEST(TorchParity, PrunedShapeMatches) {
  expect_torch_parity({.layers = 2,
                       .d_model = 64,
                       .heads = 3,
                       .seq_len = 80,
                       .vocab = 301,
                       .mlp_width = 100,
                       .head_size = 24});
}

}  // namespace
}  // namespace triad
