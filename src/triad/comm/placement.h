#pragma once
// Where each rank of a job runs: its host, its node (the ranks that share memory, Context::node_index) and
// the CPUs it may run on (its affinity). Ranks on one node whose CPUs are fewer than the ranks take turns
// on them (parallel/shared_cores.h).

#include <string>
#include <vector>

#include "triad/comm/context.h"
#include "triad/comm/topology.h"

namespace triad::comm {

struct Placement {
  std::string host;
  int node = 0;
  std::vector<int> cpus;
};

// Collective: every rank's placement, by world rank, on every rank.
std::vector<Placement> gather_placement(Context& context);

// Collective: gather_placement() into `topology`'s ranks (host, node, cpus), one per world rank.
void place_ranks(Context& context, Topology& topology);

}  // namespace triad::comm
