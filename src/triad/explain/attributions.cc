#include "triad/explain/attributions.h"

#include <algorithm>
#include <boost/math/quadrature/gauss.hpp>
#include <cmath>
#include <numeric>

#include "triad/core/error.h"
#include "triad/core/rng.h"
#include "triad/explain/attention_graph.h"
#include "triad/explain/regression.h"

namespace triad::explain {

namespace {

struct MethodName {
  Method method;
  const char* name;
};
constexpr MethodName kMethods[] = {
    {Method::kAttention, "attention"},
    {Method::kRollout, "rollout"},
    {Method::kFlow, "flow"},
    {Method::kGradAttention, "grad_attention"},
    {Method::kGradInput, "grad_input"},
    {Method::kIntegratedGradients, "ig"},
    {Method::kOcclusion, "occlusion"},
    {Method::kLime, "lime"},
    {Method::kShap, "shap"},
};

// The mean over the pooled rows of a T x T matrix: what those positions take from each token.
std::vector<double> read_rows(const std::vector<double>& matrix, const std::vector<int>& rows, int T) {
  std::vector<double> out(T, 0.0);
  for (int i : rows) {
    for (int j = 0; j < T; ++j) out[j] += matrix[static_cast<size_t>(i) * T + j] / rows.size();
  }
  return out;
}

// (α_k, ω_k) on [0, 1]: ∫₀¹ f ≈ Σ ω_k f(α_k).
template <int N>
std::vector<std::pair<double, double>> gauss_legendre_nodes() {
  using Rule = boost::math::quadrature::gauss<double, N>;
  std::vector<std::pair<double, double>> out;
  const auto& x = Rule::abscissa();
  const auto& w = Rule::weights();
  for (size_t i = 0; i < x.size(); ++i) {
    out.push_back({(1 + x[i]) / 2, w[i] / 2});
    if (x[i] != 0) out.push_back({(1 - x[i]) / 2, w[i] / 2});
  }
  return out;
}

std::vector<double> gradient_times_input(Probe& probe, const std::vector<int32_t>& tokens,
                                         const std::vector<std::pair<double, double>>& nodes, int batch,
                                         double sign) {
  const size_t T = tokens.size(), C = probe.d_model(), TC = T * C;
  const std::vector<float> e = probe.token_embeddings(tokens);
  std::vector<double> integral(TC, 0.0);
  std::vector<float> path;
  std::vector<double> logits;
  std::vector<float> grads;
  for (size_t begin = 0; begin < nodes.size(); begin += batch) {
    const size_t n = std::min<size_t>(batch, nodes.size() - begin);
    path.resize(n * TC);
    for (size_t k = 0; k < n; ++k) {
      const float alpha = static_cast<float>(nodes[begin + k].first);
      for (size_t i = 0; i < TC; ++i) path[k * TC + i] = alpha * e[i];
    }
    probe.logits_and_gradients(tokens, path, static_cast<int>(n), &logits, &grads);
    for (size_t k = 0; k < n; ++k) {
      const double weight = nodes[begin + k].second;
      for (size_t i = 0; i < TC; ++i) integral[i] += weight * grads[k * TC + i];
    }
  }
  std::vector<double> out(T, 0.0);
  for (size_t t = 0; t < T; ++t) {
    for (size_t c = 0; c < C; ++c) out[t] += sign * e[t * C + c] * integral[t * C + c];
  }
  return out;
}

std::vector<uint8_t> all_kept(size_t W) {
  return std::vector<uint8_t>(W, 1);
}

std::vector<double> occlusion(Probe& probe, const Words& words, int label) {
  const size_t W = words.size();
  std::vector<std::vector<uint8_t>> masks(1 + W, all_kept(W));
  for (size_t w = 0; w < W; ++w) masks[1 + w][w] = 0;
  const std::vector<double> p = label_probabilities(probe, words, label, masks);
  std::vector<double> out(W);
  for (size_t w = 0; w < W; ++w) out[w] = p[0] - p[1 + w];
  return out;
}

std::vector<double> lime(Probe& probe, const Words& words, int label, const MethodOptions& options) {
  const int W = static_cast<int>(words.size());
  const int n = std::max(2, options.lime_samples);
  Rng rng(options.seed);
  std::vector<std::vector<uint8_t>> masks(n, all_kept(W));
  std::vector<int> order(W);
  for (int s = 1; s < n; ++s) {
    const int removed = 1 + static_cast<int>(rng.uniform() * W);  // 1..W
    std::iota(order.begin(), order.end(), 0);
    for (int i = 0; i < removed; ++i) {  // a partial Fisher-Yates shuffle picks `removed` distinct words
      const int j = i + static_cast<int>(rng.uniform() * (W - i));
      std::swap(order[i], order[j]);
      masks[s][order[i]] = 0;
    }
  }
  const std::vector<double> y = label_probabilities(probe, words, label, masks);
  std::vector<double> X(static_cast<size_t>(n) * W), weight(n);
  constexpr double kKernelWidth = 0.25;  // LIME's 25 on distances scaled by 100
  for (int s = 0; s < n; ++s) {
    int kept = 0;
    for (int w = 0; w < W; ++w) {
      X[static_cast<size_t>(s) * W + w] = masks[s][w];
      kept += masks[s][w];
    }
    const double cosine = kept == 0 ? 0.0 : kept / (std::sqrt(static_cast<double>(kept)) * std::sqrt(W));
    const double d = 1.0 - cosine;
    weight[s] = std::sqrt(std::exp(-d * d / (kKernelWidth * kKernelWidth)));
  }
  return weighted_ridge(X, y, weight, n, W, 1.0).coef;
}

std::vector<double> shap(Probe& probe, const Words& words, int label, const MethodOptions& options) {
  const int M = static_cast<int>(words.size());
  std::vector<std::vector<uint8_t>> masks = {all_kept(M), std::vector<uint8_t>(M, 0)};
  std::vector<double> weight;
  const bool exact = M < 30 && (1LL << M) - 2 <= options.shap_samples;
  if (exact) {
    for (int64_t bits = 1; bits + 1 < (1LL << M); ++bits) {
      std::vector<uint8_t> z(M);
      int size = 0;
      for (int j = 0; j < M; ++j) size += z[j] = (bits >> j) & 1;
      masks.push_back(std::move(z));
      weight.push_back(shapley_kernel(M, size));
    }
  } else {
    // Sizes drawn in proportion to the kernel's total weight per size, (M-1)/(s(M-s)); then equal weights.
    std::vector<double> cumulative;
    double sum = 0;
    for (int s = 1; s < M; ++s) cumulative.push_back(sum += 1.0 / (s * static_cast<double>(M - s)));
    Rng rng(options.seed);
    std::vector<int> order(M);
    for (int i = 0; i < options.shap_samples; ++i) {
      const double u = rng.uniform() * sum;
      const int size = 1 + static_cast<int>(std::lower_bound(cumulative.begin(), cumulative.end(), u) -
                                            cumulative.begin());
      std::vector<uint8_t> z(M, 0);
      std::iota(order.begin(), order.end(), 0);
      for (int k = 0; k < std::min(size, M - 1); ++k) {
        const int j = k + static_cast<int>(rng.uniform() * (M - k));
        std::swap(order[k], order[j]);
        z[order[k]] = 1;
      }
      masks.push_back(std::move(z));
      weight.push_back(1.0);
    }
  }
  const std::vector<double> f = label_probabilities(probe, words, label, masks);
  const int n = static_cast<int>(masks.size()) - 2;
  std::vector<double> Z(static_cast<size_t>(n) * M), y(n);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < M; ++j) Z[static_cast<size_t>(i) * M + j] = masks[2 + i][j];
    y[i] = f[2 + i] - f[1];
  }
  return shapley_fit(Z, y, weight, n, M, f[0] - f[1]);
}

}  // namespace

std::vector<std::pair<double, double>> path_nodes(int steps, bool gauss_legendre) {
  if (!gauss_legendre) {
    std::vector<std::pair<double, double>> out;
    for (int k = 0; k < steps; ++k) out.push_back({(k + 0.5) / steps, 1.0 / steps});
    return out;
  }
  switch (steps) {
    case 4:
      return gauss_legendre_nodes<4>();
    case 8:
      return gauss_legendre_nodes<8>();
    case 16:
      return gauss_legendre_nodes<16>();
    case 32:
      return gauss_legendre_nodes<32>();
    case 64:
      return gauss_legendre_nodes<64>();
    default:
      fail_usage("--ig-steps {} with Gauss-Legendre: use 4, 8, 16, 32 or 64", steps);
  }
}

Method parse_method(const std::string& name) {
  for (const MethodName& m : kMethods) {
    if (name == m.name) return m.method;
  }
  std::string known;
  for (const MethodName& m : kMethods) known += std::string(known.empty() ? "" : ", ") + m.name;
  fail_usage("unknown explanation method '{}' (known: {})", name, known);
}

const char* method_name(Method method) {
  for (const MethodName& m : kMethods) {
    if (m.method == method) return m.name;
  }
  return "?";
}

std::vector<Method> all_methods() {
  std::vector<Method> out;
  for (const MethodName& m : kMethods) out.push_back(m.method);
  return out;
}

std::vector<double> label_probabilities(Probe& probe, const Words& words, int label,
                                        const std::vector<std::vector<uint8_t>>& keep_masks) {
  std::vector<std::vector<int32_t>> inputs;
  inputs.reserve(keep_masks.size());
  for (const std::vector<uint8_t>& keep : keep_masks) inputs.push_back(words.kept_tokens(keep));
  const std::vector<double> z = probe.logits(inputs);
  std::vector<double> out(z.size());
  for (size_t i = 0; i < z.size(); ++i) out[i] = probe.probability(z[i], label);
  return out;
}

KeepMaskModel keep_mask_model(Probe& probe, const Words& words, int label) {
  return [&probe, &words, label](const std::vector<std::vector<int>>& masks) {
    std::vector<std::vector<uint8_t>> keep;
    for (const std::vector<int>& m : masks) keep.emplace_back(m.begin(), m.end());
    return label_probabilities(probe, words, label, keep);
  };
}

std::vector<double> last_block_attention(Probe& probe, const std::vector<int32_t>& tokens) {
  const int T = static_cast<int>(tokens.size());
  const std::vector<std::vector<double>> layers = probe.attention(tokens);
  return read_rows(layers.back(), probe.read_positions(T), T);
}

std::vector<std::vector<double>> last_block_attention_heads(Probe& probe, const Words& words) {
  const int T = static_cast<int>(words.tokens.size());
  std::vector<std::vector<double>> out;
  for (const std::vector<double>& head : probe.last_block_heads(words.tokens))
    out.push_back(words.word_scores(read_rows(head, probe.read_positions(T), T)));
  return out;
}

std::vector<double> explain_words(Probe& probe, const Words& words, Method method, int label,
                                  const MethodOptions& options) {
  if (words.size() == 0) return {};
  const std::vector<int32_t>& tokens = words.tokens;
  const int T = static_cast<int>(tokens.size());
  const double sign = label == 1 ? 1.0 : -1.0;
  switch (method) {
    case Method::kAttention:
      return words.word_scores(last_block_attention(probe, tokens));
    case Method::kRollout: {
      const std::vector<double> R = attention_rollout(probe.attention(tokens), T);
      return words.word_scores(read_rows(R, probe.read_positions(T), T));
    }
    case Method::kGradAttention: {
      const AttentionGradients a = probe.attention_gradients(tokens);
      const std::vector<double> R = gradient_weighted_rollout(a.probs, a.grads, a.heads, T, sign);
      return words.word_scores(read_rows(R, probe.read_positions(T), T));
    }
    case Method::kFlow:
      return words.word_scores(attention_flow(probe.attention(tokens), T, T - 1));
    case Method::kGradInput:
      return words.word_scores(gradient_times_input(probe, tokens, {{1.0, 1.0}}, 1, sign));
    case Method::kIntegratedGradients:
      return words.word_scores(gradient_times_input(
          probe, tokens, path_nodes(options.ig_steps, options.ig_gauss_legendre), options.ig_batch, sign));
    case Method::kOcclusion:
      return occlusion(probe, words, label);
    case Method::kLime:
      return lime(probe, words, label, options);
    case Method::kShap:
      return shap(probe, words, label, options);
  }
  fail("internal: unknown explanation method");
}

}  // namespace triad::explain
