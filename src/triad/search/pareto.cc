#include "triad/search/pareto.h"

#include <algorithm>

#include "triad/search/pagmo_module.h"

namespace triad::search {

std::vector<size_t> pareto_front(const std::vector<std::vector<double>>& points) {
  if (points.empty()) return {};
  if (points[0].size() == 1) {  // pagmo's sorting wants two objectives or more: one is a minimum
    double best = points[0][0];
    for (const auto& p : points) best = std::min(best, p[0]);
    std::vector<size_t> front;
    for (size_t i = 0; i < points.size(); ++i)
      if (points[i][0] == best) front.push_back(i);
    return front;
  }
  if (points.size() == 1) return {0};
  std::vector<size_t> front = pagmo_module().first_front(points);
  std::sort(front.begin(), front.end());
  return front;
}

double hypervolume(const std::vector<std::vector<double>>& points, const std::vector<double>& reference) {
  std::vector<std::vector<double>> inside;
  for (const auto& p : points) {
    bool below = true;
    for (size_t i = 0; i < p.size(); ++i) below = below && p[i] < reference[i];
    if (below) inside.push_back(p);
  }
  if (inside.empty()) return 0;
  if (reference.size() == 1) {
    double best = inside[0][0];
    for (const auto& p : inside) best = std::min(best, p[0]);
    return reference[0] - best;
  }
  return pagmo_module().hypervolume(inside, reference);
}

}  // namespace triad::search
