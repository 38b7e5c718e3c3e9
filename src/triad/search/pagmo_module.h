#pragma once
// pagmo's algorithms behind a module loaded on first use. Linking libpagmo into the triad binary cost every
// triad process 35 MB resident at start-up (loading libpagmo.so.8 alone: 14.5 MB anonymous, 20.7 MB
// file-backed, its relocations and static initialisers), 70 % of what `triad --help` used; only `triad
// search` needs it. So the binary links none of pagmo: libtriad_pagmo.so (src/triad/search/pagmo/, built
// beside the binary) holds every call into it, and pagmo_module() opens it with dlopen the first time it is
// asked for. The interface is plain function pointers over standard types: the module and the binary are
// built together, by the same compiler, from this header.

#include <cstddef>
#include <functional>
#include <vector>

namespace triad::search {

using Points = std::vector<std::vector<double>>;

// What the search minimises: a fitness vector of `objectives` values for each decision vector within
// [lower, upper], the last `integers` dimensions integer-valued (pagmo's convention).
struct SearchProblem {
  std::vector<double> lower, upper;
  size_t objectives = 1, integers = 0;
  std::function<std::vector<double>(const std::vector<double>&)> fitness;
};

struct PagmoModule {
  // Fast non-dominated sorting's first front (indices into points, unordered); two objectives or more.
  std::vector<size_t> (*first_front)(const Points& points);
  // The exact hypervolume of points that are all strictly better than `reference` in every coordinate.
  double (*hypervolume)(const Points& points, const std::vector<double>& reference);
  // Uniform random decision vectors from a generator seeded with `seed`, evaluated until stop() or
  // `max_draws`.
  void (*random_search)(const SearchProblem& problem, unsigned seed, int max_draws,
                        const std::function<bool()>& stop);
  // NSGA-II: a random population of `population`, then one generation at a time (seed + generation) until
  // stop() or `max_generations`; after_generation(g) runs after each.
  void (*nsga2)(const SearchProblem& problem, unsigned seed, int population, int max_generations,
                const std::function<bool()>& stop, const std::function<void(int)>& after_generation);
};

// The module's one exported symbol: extern "C" const PagmoModule* triad_pagmo_module().
inline constexpr const char* kPagmoModuleEntry = "triad_pagmo_module";
inline constexpr const char* kPagmoModuleFile = "libtriad_pagmo.so";

// Loads libtriad_pagmo.so from the running binary's directory (or ../lib/triad beside it) on the first call;
// fails naming the paths tried when it is not there.
const PagmoModule& pagmo_module();

}  // namespace triad::search
