// AdamW over the flat buffer: per-range β1 and learning rate (the trainer's top-K buckets) against the
// update written out.

#include "triad/model/optimizer.h"

#include <gtest/gtest.h>

#include <cmath>

#include "triad/model/gpt.h"

namespace triad {
namespace {

// After one step from zero moments, m = (1 - β1) g and the update is lr · sign-like m̂ / (√v̂ + ε) plus decay.
TEST(AdamW, RangeOverridesApplyToTheTensorsThatStartInThem) {
  GptConfig config;
  config.vocab = 64;
  config.layers = 2;
  config.d_model = 16;
  config.heads = 2;
  config.seq_len = 8;
  Gpt<float> model(config);
  const auto& tensors = model.layout().tensors();
  ASSERT_GT(tensors.size(), 6u);
  const size_t n = model.num_params();
  std::vector<float> grads(n), params(n);
  for (size_t i = 0; i < n; ++i) {
    grads[i] = std::sin(0.37 * static_cast<double>(i)) * 1e-2f;
    params[i] = std::cos(0.11 * static_cast<double>(i));
  }
  AdamWConfig options;
  AdamW adamw(model.layout());
  // Tensors 3 and 4 start inside the range; tensor 5 starts at its end.
  adamw.override_range(tensors[3].offset - 1, tensors[5].offset, 0.25f, 0.5f);
  std::vector<float> updated = params;
  const float lr = 1e-3f;
  adamw.update(updated.data(), grads.data(), lr, options);
  for (size_t t = 0; t < tensors.size(); ++t) {
    const bool inside = t == 3 || t == 4;
    const float beta1 = inside ? 0.25f : options.beta1;
    const double step_lr = inside ? 0.5 * lr : lr;
    for (size_t i = tensors[t].offset; i < tensors[t].offset + tensors[t].count; ++i) {
      ASSERT_FLOAT_EQ(adamw.m()[i], (1 - beta1) * grads[i]) << tensors[t].name << " [" << i << "]";
      // Bias-corrected, the first step is g / (|g| + ε) whatever β1 is: there the range changes only the
      // rate.
      const double g = grads[i], decay = tensors[t].decay ? options.weight_decay : 0.0;
      const double expected = params[i] - step_lr * (g / (std::fabs(g) + 1e-8) + decay * params[i]);
      ASSERT_NEAR(updated[i], expected, 1e-6) << tensors[t].name << " [" << i << "]";
    }
  }
}

}  // namespace
}  // namespace triad
