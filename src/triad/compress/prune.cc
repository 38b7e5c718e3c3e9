#include "triad/compress/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "triad/core/error.h"
#include "triad/model/params.h"

namespace triad {

namespace {

// Σ w² over rows [row, row + rows) and columns [col, col + cols) of a row-major matrix `stride` wide.
double prune_square_sum(const float* w, size_t stride, size_t row, size_t rows, size_t col, size_t cols) {
  double sum = 0;
  for (size_t r = row; r < row + rows; ++r)
    for (size_t c = col; c < col + cols; ++c)
      sum += static_cast<double>(w[r * stride + c]) * w[r * stride + c];
  return sum;
}

// The indices of the `keep` largest importances, ascending (a tie keeps the earlier index).
std::vector<int> prune_keep_largest(const std::vector<double>& importance, int keep) {
  std::vector<int> order(importance.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return importance[a] > importance[b]; });
  order.resize(static_cast<size_t>(keep));
  std::sort(order.begin(), order.end());
  return order;
}

// Heads as the rows (or columns) of an A-wide dimension they own: HS per head, in each of `parts` blocks.
std::vector<int> prune_head_channels(const std::vector<int>& heads, int head_size, int width, int parts) {
  std::vector<int> out;
  for (int p = 0; p < parts; ++p)
    for (int h : heads)
      for (int i = 0; i < head_size; ++i) out.push_back(p * width + h * head_size + i);
  return out;
}

// Per element of `to` (row-major), its index in `from`: row r is row rows[r] of `from` (row r itself when
// `rows` is empty), and in a matrix column c is column cols[c] (or c).
void prune_select(const TensorSpec& from, const TensorSpec& to, const std::vector<int>& rows,
                  const std::vector<int>& cols, size_t* out) {
  const size_t n_rows = static_cast<size_t>(to.shape[0]);
  const size_t n_cols = to.shape.size() > 1 ? static_cast<size_t>(to.shape[1]) : 1;
  const size_t from_cols = from.shape.size() > 1 ? static_cast<size_t>(from.shape[1]) : 1;
  for (size_t r = 0; r < n_rows; ++r) {
    const size_t fr = rows.empty() ? r : static_cast<size_t>(rows[r]);
    for (size_t c = 0; c < n_cols; ++c) {
      const size_t fc = cols.empty() ? c : static_cast<size_t>(cols[c]);
      out[r * n_cols + c] = from.offset + fr * from_cols + fc;
    }
  }
}

}  // namespace

GptConfig without_heads(const GptConfig& config, int remove) {
  if (remove < 0 || remove >= config.heads) {
    fail_usage("--remove-heads must be from 0 to {} (one head of the {} must stay), got {}", config.heads - 1,
               config.heads, remove);
  }
  GptConfig c = config;
  if (remove == 0) return c;
  c.head_size = config.head_dim();
  c.heads = config.heads - remove;
  return c;
}

int mlp_width_removing(const GptConfig& config, double remove, int remove_heads) {
  if (!(remove > 0 && remove < 1)) fail_usage("--remove must be a fraction in (0, 1), got {}", remove);
  const double target = (1 - remove) * config.parameter_count();
  GptConfig c = without_heads(config, remove_heads);
  if (c.parameter_count() <= target) {
    fail_usage("--remove-heads {} alone removes {:.1f} % of the parameters, more than --remove {}",
               remove_heads, 100.0 * (1 - c.parameter_count() / config.parameter_count()), remove);
  }
  for (int width = config.mlp(); width >= 1; --width) {
    c.mlp_width = width;
    if (c.parameter_count() <= target) return width;
  }
  fail_usage(
      "--remove {}: even one MLP unit per layer keeps {:.1f} % of the parameters (the embedding and "
      "LayerNorms are not pruned; --remove-heads {} prunes attention)",
      remove, 100.0 * c.parameter_count() / config.parameter_count(), remove_heads);
}

StructuredPruning prune_structure(const GptConfig& config, const float* params, int heads, int width) {
  const int C = config.d_model, F = config.mlp(), NH = config.heads;
  const int HS = config.head_dim(), A = config.attention_width();
  if (width < 1 || width > F) fail_usage("an MLP width of {} (the model has {} units)", width, F);
  if (heads < 1 || heads > NH) fail_usage("keeping {} heads (the model has {})", heads, NH);
  const ParameterLayout from(config);
  StructuredPruning p;
  p.config = without_heads(config, NH - heads);
  p.config.mlp_width = width;
  for (int l = 0; l < config.layers; ++l) {
    const std::string prefix = "h." + std::to_string(l) + ".";
    const float* qkv_w = params + from.find(prefix + "attn.qkv.weight")->offset;  // (3A, C)
    const float* qkv_b = params + from.find(prefix + "attn.qkv.bias")->offset;    // (3A)
    const float* proj = params + from.find(prefix + "attn.proj.weight")->offset;  // (C, A)
    std::vector<double> head_importance(static_cast<size_t>(NH));
    for (int h = 0; h < NH; ++h) {
      const size_t v = static_cast<size_t>(2 * A + h * HS);  // the head's value rows
      const double in = prune_square_sum(qkv_w, C, v, HS, 0, C) + prune_square_sum(qkv_b, 1, v, HS, 0, 1);
      const double out = prune_square_sum(proj, A, 0, C, static_cast<size_t>(h) * HS, HS);
      head_importance[h] = std::sqrt(in * out);
    }
    p.kept_heads.push_back(prune_keep_largest(head_importance, heads));

    const float* fc = params + from.find(prefix + "mlp.fc.weight")->offset;        // (F, C)
    const float* fcproj = params + from.find(prefix + "mlp.proj.weight")->offset;  // (C, F)
    std::vector<double> unit_importance(static_cast<size_t>(F));
    for (int j = 0; j < F; ++j)
      unit_importance[j] =
          std::sqrt(prune_square_sum(fc, C, j, 1, 0, C) * prune_square_sum(fcproj, F, 0, C, j, 1));
    p.kept_units.push_back(prune_keep_largest(unit_importance, width));
  }
  const ParameterLayout to(p.config);
  p.source.resize(to.count());
  for (const TensorSpec& t : to.tensors()) {
    const TensorSpec& s = *from.find(t.name);
    size_t* out = p.source.data() + t.offset;
    if (!t.name.starts_with("h.")) {
      std::iota(out, out + t.count, s.offset);
      continue;
    }
    const size_t l = static_cast<size_t>(std::stoi(t.name.substr(2)));
    const std::vector<int> none;
    const std::vector<int> qkv_rows = prune_head_channels(p.kept_heads[l], HS, A, 3);
    const std::vector<int> head_cols = prune_head_channels(p.kept_heads[l], HS, A, 1);
    const std::vector<int>& units = p.kept_units[l];
    if (t.name.ends_with("attn.qkv.weight") || t.name.ends_with("attn.qkv.bias")) {
      prune_select(s, t, qkv_rows, none, out);
    } else if (t.name.ends_with("attn.proj.weight")) {
      prune_select(s, t, none, head_cols, out);
    } else if (t.name.ends_with("mlp.fc.weight") || t.name.ends_with("mlp.fc.bias")) {
      prune_select(s, t, units, none, out);
    } else if (t.name.ends_with("mlp.proj.weight")) {
      prune_select(s, t, none, units, out);
    } else {  // LayerNorms and the projections' biases (C): whole
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
