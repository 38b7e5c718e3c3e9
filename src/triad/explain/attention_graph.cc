#include "triad/explain/attention_graph.h"

// GCC's -Wmaybe-uninitialized misfires inside Boost.Graph's edge iterator (an empty boost::optional).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/boykov_kolmogorov_max_flow.hpp>
#pragma GCC diagnostic pop
#include <cmath>

#include "triad/core/error.h"

namespace triad::explain {

namespace {

using Traits = boost::adjacency_list_traits<boost::vecS, boost::vecS, boost::directedS>;
struct FlowEdge {
  double capacity = 0;
  double residual = 0;
  Traits::edge_descriptor reverse;
};
using FlowGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property, FlowEdge>;

// An edge and its zero-capacity reverse, which Boykov-Kolmogorov needs for the residual graph.
void add_flow_edge(FlowGraph& g, int from, int to, double capacity) {
  const auto e = boost::add_edge(from, to, g).first;
  const auto r = boost::add_edge(to, from, g).first;
  g[e].capacity = capacity;
  g[r].capacity = 0;
  g[e].reverse = r;
  g[r].reverse = e;
}

}  // namespace

std::vector<std::vector<double>> residual_attention(const std::vector<std::vector<double>>& layers,
                                                    int tokens, double residual) {
  if (layers.empty()) fail_usage("attention graph: no layers");
  if (tokens <= 0) fail_usage("attention graph: {} tokens", tokens);
  if (!(residual >= 0 && residual <= 1))
    fail_usage("attention graph: residual weight {} is not in [0, 1]", residual);
  const size_t t = size_t(tokens);
  std::vector<std::vector<double>> out;
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto& a = layers[l];
    if (a.size() != t * t) fail_usage("attention layer {}: {} values for {} x {} tokens", l, a.size(), t, t);
    std::vector<double> h(t * t);
    for (size_t i = 0; i < t; ++i) {
      double row = 0;
      for (size_t j = 0; j < t; ++j) {
        const double v = a[i * t + j];
        if (!std::isfinite(v) || v < 0) fail_usage("attention layer {}: weight [{}, {}] = {}", l, i, j, v);
        row += v;
      }
      if (std::fabs(row - 1) > 1e-4) fail_usage("attention layer {}: row {} sums to {}, not 1", l, i, row);
      double sum = 0;
      for (size_t j = 0; j < t; ++j) {
        h[i * t + j] = (1 - residual) * a[i * t + j] + (i == j ? residual : 0.0);
        sum += h[i * t + j];
      }
      for (size_t j = 0; j < t; ++j) h[i * t + j] /= sum;
    }
    out.push_back(std::move(h));
  }
  return out;
}

std::vector<double> attention_rollout(const std::vector<std::vector<double>>& layers, int tokens,
                                      double residual) {
  const auto hat = residual_attention(layers, tokens, residual);
  const size_t t = size_t(tokens);
  std::vector<double> r = hat[0], next(t * t);
  for (size_t l = 1; l < hat.size(); ++l) {  // r <- Â_l r
    std::fill(next.begin(), next.end(), 0.0);
    for (size_t i = 0; i < t; ++i)
      for (size_t k = 0; k < t; ++k) {
        const double w = hat[l][i * t + k];
        if (w == 0) continue;
        for (size_t j = 0; j < t; ++j) next[i * t + j] += w * r[k * t + j];
      }
    std::swap(r, next);
  }
  return r;
}

std::vector<double> attention_flow(const std::vector<std::vector<double>>& layers, int tokens, int position,
                                   double residual) {
  const auto hat = residual_attention(layers, tokens, residual);
  if (position < 0 || position >= tokens)
    fail_usage("attention flow: position {} of {} tokens", position, tokens);
  const int t = tokens, levels = int(hat.size());
  // Nodes reachable from (L, position) along positive capacities, level by level downward; node ids are
  // handed out as they are found. Under causal attention this keeps positions <= position only.
  std::vector<std::vector<int>> id(levels + 1, std::vector<int>(t, -1));
  int nodes = 0;
  id[levels][position] = nodes++;
  for (int v = levels; v > 0; --v) {
    const auto& a = hat[v - 1];
    for (int i = 0; i < t; ++i) {
      if (id[v][i] < 0) continue;
      for (int j = 0; j < t; ++j)
        if (a[size_t(i) * t + j] > 0 && id[v - 1][j] < 0) id[v - 1][j] = nodes++;
    }
  }
  FlowGraph g(nodes);
  for (int v = levels; v > 0; --v) {
    const auto& a = hat[v - 1];
    for (int i = 0; i < t; ++i) {
      if (id[v][i] < 0) continue;
      for (int j = 0; j < t; ++j)
        if (a[size_t(i) * t + j] > 0) add_flow_edge(g, id[v][i], id[v - 1][j], a[size_t(i) * t + j]);
    }
  }

  std::vector<boost::default_color_type> color(nodes);
  std::vector<long> distance(nodes);
  std::vector<Traits::edge_descriptor> predecessor(nodes);
  const auto index = boost::get(boost::vertex_index, g);
  std::vector<double> flow(t, 0.0);
  for (int j = 0; j < t; ++j) {
    if (id[0][j] < 0) continue;  // unreachable: no flow
    // Each call starts again from the capacities (the algorithm resets the residuals).
    flow[j] = boost::boykov_kolmogorov_max_flow(
        g, boost::get(&FlowEdge::capacity, g), boost::get(&FlowEdge::residual, g),
        boost::get(&FlowEdge::reverse, g), boost::make_iterator_property_map(predecessor.begin(), index),
        boost::make_iterator_property_map(color.begin(), index),
        boost::make_iterator_property_map(distance.begin(), index), index, id[levels][position], id[0][j]);
  }
  return flow;
}

std::vector<double> gradient_weighted_rollout(const std::vector<std::vector<float>>& probs,
                                              const std::vector<std::vector<float>>& grads, int heads,
                                              int tokens, double sign) {
  const size_t T = size_t(tokens), TT = T * T;
  if (probs.empty() || probs.size() != grads.size())
    fail_usage("gradient-weighted attention: layers do not match");
  std::vector<double> R(TT, 0.0), bar(TT), next(TT);
  for (size_t i = 0; i < T; ++i) R[i * T + i] = 1;
  for (size_t l = 0; l < probs.size(); ++l) {
    if (probs[l].size() != heads * TT || grads[l].size() != heads * TT)
      fail_usage("gradient-weighted attention: layer {} is not {} x {} x {}", l, heads, T, T);
    std::fill(bar.begin(), bar.end(), 0.0);
    for (size_t h = 0; h < size_t(heads); ++h) {
      for (size_t k = 0; k < TT; ++k)
        bar[k] += std::max(0.0, sign * grads[l][h * TT + k] * probs[l][h * TT + k]) / heads;
    }
    next = R;  // R + Ā R
    for (size_t i = 0; i < T; ++i) {
      for (size_t k = 0; k < T; ++k) {
        const double a = bar[i * T + k];
        if (a == 0) continue;
        for (size_t j = 0; j < T; ++j) next[i * T + j] += a * R[k * T + j];
      }
    }
    R.swap(next);
  }
  for (size_t i = 0; i < T; ++i) R[i * T + i] -= 1;
  return R;
}

}  // namespace triad::explain
