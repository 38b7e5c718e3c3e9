#include "triad/comm/placement.h"

#include <mpi.h>
#include <sched.h>
#include <unistd.h>

#include "triad/comm/collectives.h"

namespace triad::comm {

std::vector<Placement> gather_placement(Context& context) {
  const int world = context.world();
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  std::vector<char> hosts(sizeof(host) * world, 0);
  cpu_set_t affinity;
  if (sched_getaffinity(0, sizeof affinity, &affinity) != 0) CPU_ZERO(&affinity);
  std::vector<cpu_set_t> affinities(world);
  std::vector<int> nodes(world, 0);
  int node = context.node_index();
  if (context.uses_mpi()) {
    int length = 0;
    MPI_Get_processor_name(host, &length);
    MPI_Request requests[3];
    check_mpi(MPI_Iallgather(host, sizeof(host), MPI_CHAR, hosts.data(), sizeof(host), MPI_CHAR,
                             context.comm(), &requests[0]),
              "sharing where the ranks run");
    check_mpi(MPI_Iallgather(&affinity, sizeof affinity, MPI_BYTE, affinities.data(), sizeof affinity,
                             MPI_BYTE, context.comm(), &requests[1]),
              "sharing where the ranks run");
    check_mpi(MPI_Iallgather(&node, 1, MPI_INT, nodes.data(), 1, MPI_INT, context.comm(), &requests[2]),
              "sharing where the ranks run");
    context.wait(requests, 3, "sharing where the ranks run");
  } else {
    gethostname(hosts.data(), sizeof(host) - 1);
    affinities[0] = affinity;
  }
  std::vector<Placement> all(world);
  for (int r = 0; r < world; ++r) {
    all[r].host = &hosts[r * sizeof(host)];
    all[r].node = nodes[r];
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &affinities[r])) all[r].cpus.push_back(cpu);
    }
  }
  return all;
}

void place_ranks(Context& context, Topology& topology) {
  const std::vector<Placement> placement = gather_placement(context);
  topology.ranks.resize(placement.size());
  for (size_t r = 0; r < placement.size(); ++r) {
    topology.ranks[r].host = placement[r].host;
    topology.ranks[r].node = placement[r].node;
    topology.ranks[r].cpus = placement[r].cpus;
  }
}

}  // namespace triad::comm
