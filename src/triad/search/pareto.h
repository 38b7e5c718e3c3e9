#pragma once
// The Pareto front and its hypervolume, both from pagmo (fast non-dominated sorting, the exact
// hypervolume algorithms), over points whose every coordinate is minimised.

#include <cstddef>
#include <vector>

namespace triad::search {

// The indices of the points no other point dominates (no worse in every coordinate, better in one),
// ascending. Equal points are all on the front.
std::vector<size_t> pareto_front(const std::vector<std::vector<double>>& points);

// The volume dominated by the points and bounded by `reference`; points not strictly better than the
// reference in every coordinate add nothing (pagmo refuses them, so they are left out first).
double hypervolume(const std::vector<std::vector<double>>& points, const std::vector<double>& reference);

}  // namespace triad::search
