#include "triad/compress/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "triad/core/error.h"
#include "triad/model/params.h"

namespace triad {

int mlp_width_removing(const GptConfig& config, double remove) {
  if (!(remove > 0 && remove < 1)) fail_usage("--remove must be a fraction in (0, 1), got {}", remove);
  const double target = (1 - remove) * config.parameter_count();
  GptConfig c = config;
  for (int width = config.mlp(); width >= 1; --width) {
    c.mlp_width = width;
    if (c.parameter_count() <= target) return width;
  }
  fail_usage(
      "--remove {}: even one MLP unit per layer keeps {:.1f} % of the parameters (the embedding, attention "
      "and LayerNorms are not pruned)",
      remove, 100.0 * c.parameter_count() / config.parameter_count());
}

MlpPruning prune_mlp_units(const GptConfig& config, const float* params, int width) {
  const int C = config.d_model, F = config.mlp();
  if (width < 1 || width > F) fail_usage("an MLP width of {} (the model has {} units)", width, F);
  const ParameterLayout from(config);
  MlpPruning p;
  p.config = config;
  p.config.mlp_width = width;
  for (int l = 0; l < config.layers; ++l) {
    const std::string prefix = "h." + std::to_string(l) + ".mlp.";
    const float* fc = params + from.find(prefix + "fc.weight")->offset;      // (F, C)
    const float* proj = params + from.find(prefix + "proj.weight")->offset;  // (C, F)
    std::vector<double> importance(static_cast<size_t>(F));
    for (int j = 0; j < F; ++j) {
      double in = 0, out = 0;
      for (int c = 0; c < C; ++c) {
        in += static_cast<double>(fc[static_cast<size_t>(j) * C + c]) * fc[static_cast<size_t>(j) * C + c];
        out +=
            static_cast<double>(proj[static_cast<size_t>(c) * F + j]) * proj[static_cast<size_t>(c) * F + j];
      }
      importance[j] = std::sqrt(in * out);
    }
    std::vector<int> order(static_cast<size_t>(F));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return importance[a] > importance[b]; });
    order.resize(static_cast<size_t>(width));
    std::sort(order.begin(), order.end());
    p.kept.push_back(std::move(order));
  }
  const ParameterLayout to(p.config);
  p.source.resize(to.count());
  for (const TensorSpec& t : to.tensors()) {
    const TensorSpec& s = *from.find(t.name);
    size_t* out = p.source.data() + t.offset;
    const size_t dot = t.name.find(".mlp.");
    if (dot == std::string::npos) {
      std::iota(out, out + t.count, s.offset);
      continue;
    }
    const std::vector<int>& kept = p.kept[static_cast<size_t>(std::stoi(t.name.substr(2)))];
    if (t.name.ends_with("fc.weight")) {  // rows
      for (int j = 0; j < width; ++j)
        for (int c = 0; c < C; ++c)
          out[static_cast<size_t>(j) * C + c] = s.offset + static_cast<size_t>(kept[j]) * C + c;
    } else if (t.name.ends_with("fc.bias")) {
      for (int j = 0; j < width; ++j) out[j] = s.offset + static_cast<size_t>(kept[j]);
    } else if (t.name.ends_with("proj.weight")) {  // columns
      for (int c = 0; c < C; ++c)
        for (int j = 0; j < width; ++j)
          out[static_cast<size_t>(c) * width + j] = s.offset + static_cast<size_t>(c) * F + kept[j];
    } else {  // mlp.proj.bias (C): whole
      std::iota(out, out + t.count, s.offset);
    }
  }
  return p;
}

std::vector<float> gather(const std::vector<size_t>& source, const float* values) {
  std::vector<float> out(source.size());
  for (size_t i = 0; i < source.size(); ++i) out[i] = values[source[i]];
  return out;
}

size_t prune_magnitude(const GptConfig& config, float* params, double sparsity) {
  if (!(sparsity >= 0 && sparsity < 1))
    fail_usage("--sparsity must be a fraction in [0, 1), got {}", sparsity);
  const ParameterLayout layout(config);
  size_t zeros = 0;
  for (const TensorSpec& t : layout.tensors()) {
    if (!t.decay) continue;  // the four linear weights of each block
    float* w = params + t.offset;
    const size_t k = static_cast<size_t>(std::floor(sparsity * static_cast<double>(t.count)));
    if (k > 0) {
      std::vector<float> magnitude(w, w + t.count);
      for (float& x : magnitude) x = std::fabs(x);
      std::nth_element(magnitude.begin(), magnitude.begin() + static_cast<std::ptrdiff_t>(k - 1),
                       magnitude.end());
      const float threshold = magnitude[k - 1];
      // Entries equal to the threshold: only as many as needed to reach k, the first ones.
      size_t below = 0;
      for (size_t i = 0; i < t.count; ++i) below += std::fabs(w[i]) < threshold;
      size_t ties = k - below;
      for (size_t i = 0; i < t.count; ++i) {
        const float a = std::fabs(w[i]);
        if (a < threshold || (a == threshold && ties > 0 && ties--)) w[i] = 0;
      }
    }
    for (size_t i = 0; i < t.count; ++i) zeros += w[i] == 0;
  }
  return zeros;
}

}  // namespace triad
