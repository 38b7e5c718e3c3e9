#pragma once
// `triad search`: multi-objective search over training configurations. Each trial is a `triad train`
// subprocess (trial.h) recorded in an append-only journal (journal.h); the algorithms are pagmo's
// NSGA-II and uniform random sampling; the output is the Pareto front of the feasible trials with its
// hypervolume at the space's fixed reference point (DIR/front.md, DIR/front.svg: front_report.h).
//
// Infeasible and failed trials: pagmo's NSGA-II has no constraints, so a trial outside a constraint is
// given a penalty fitness instead of its objectives, reference + 1 + its total relative violation in every
// coordinate, and a failed trial reference + 1000: each is dominated by every feasible trial inside the
// reference box, and neither is ever on the front.
//
// Resume: the search is a deterministic function of (space, algorithm, seed, population): run again with the
// same command, it proposes the same decision vectors in the same order, finds the finished ones in the
// journal and runs only the rest.

#include <cstdint>
#include <string>
#include <vector>

#include "triad/search/journal.h"
#include "triad/search/space.h"

namespace triad::search {

struct SearchOptions {
  std::string space_path;
  std::string out_dir;
  std::string algorithm = "nsga2";  // or "random"
  int trials = 16;                  // the budget: trials run (found in the journal or not)
  int population = 8;               // NSGA-II: at least 5, a multiple of 4
  uint64_t seed = 1;
  std::string binary;  // the triad binary trials run; empty: this one (/proc/self/exe)
};

struct SearchResult {
  std::vector<TrialRecord> trials;  // every trial of the journal, in order
  std::vector<size_t> front;        // indices into trials: the feasible non-dominated ones
  double hypervolume = 0;
  int trials_run = 0;  // by this invocation (the rest came from the journal)
};

SearchResult run_search(const SearchOptions& options);

// The fitness the algorithm sees for a trial (the penalties above).
std::vector<double> trial_fitness(const SearchSpace& space, const TrialRecord& trial);

}  // namespace triad::search
