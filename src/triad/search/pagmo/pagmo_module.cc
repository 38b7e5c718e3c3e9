// libtriad_pagmo.so: every call triad makes into pagmo (see triad/search/pagmo_module.h for why it is a
// module). Built from this file alone, without triad's library.
#include <pagmo/algorithm.hpp>
#include <pagmo/algorithms/nsga2.hpp>
#include <pagmo/population.hpp>
#include <pagmo/problem.hpp>
#include <pagmo/rng.hpp>
#include <pagmo/utils/generic.hpp>
#include <pagmo/utils/hypervolume.hpp>
#include <pagmo/utils/multi_objective.hpp>

#include "triad/search/pagmo_module.h"

namespace triad::search {
namespace {

// pagmo's user-defined problem over a SearchProblem (pagmo copies it; the fitness function is shared).
struct UserProblem {
  const SearchProblem* problem = nullptr;

  pagmo::vector_double fitness(const pagmo::vector_double& x) const { return problem->fitness(x); }
  std::pair<pagmo::vector_double, pagmo::vector_double> get_bounds() const {
    return {problem->lower, problem->upper};
  }
  pagmo::vector_double::size_type get_nobj() const { return problem->objectives; }
  pagmo::vector_double::size_type get_nix() const { return problem->integers; }
  std::string get_name() const { return "triad train trials"; }
};

std::vector<size_t> first_front(const Points& points) {
  const auto sorted = pagmo::fast_non_dominated_sorting(points);
  return {std::get<0>(sorted).at(0).begin(), std::get<0>(sorted).at(0).end()};
}

double hypervolume(const Points& points, const std::vector<double>& reference) {
  return pagmo::hypervolume(points, /*verify=*/true).compute(reference);
}

void random_search(const SearchProblem& problem, unsigned seed, int max_draws,
                   const std::function<bool()>& stop) {
  const pagmo::problem p{UserProblem{&problem}};
  pagmo::detail::random_engine_type rng(seed);
  for (int draws = 0; !stop() && draws < max_draws; ++draws)
    problem.fitness(pagmo::random_decision_vector(p, rng));
}

void nsga2(const SearchProblem& problem, unsigned seed, int population, int max_generations,
           const std::function<bool()>& stop, const std::function<void(int)>& after_generation) {
  const pagmo::problem p{UserProblem{&problem}};
  pagmo::population individuals(p, static_cast<pagmo::population::size_type>(population), seed);
  const double mutation = 1.0 / static_cast<double>(problem.lower.size());
  for (int generation = 1; !stop() && generation <= max_generations; ++generation) {
    pagmo::algorithm algorithm{pagmo::nsga2(1u, 0.95, 10., mutation, 50., seed + generation)};
    individuals = algorithm.evolve(individuals);
    after_generation(generation);
  }
}

const PagmoModule kModule{first_front, hypervolume, random_search, nsga2};

}  // namespace
}  // namespace triad::search

// Looked up by name (kPagmoModuleEntry) by pagmo_module().
extern "C" __attribute__((visibility("default"))) const triad::search::PagmoModule* triad_pagmo_module() {
  return &triad::search::kModule;
}
