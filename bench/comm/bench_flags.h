#pragma once
// The MPI benches parse their flags with CLI11 (as the triad CLI does) and call require_mpirun() after
// Context::open: they time messages between ranks, and plain MPI calls abort without a launcher.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "triad/comm/context.h"

namespace triad::bench {

inline void require_mpirun(const comm::Context& context, const CLI::App& app) {
  if (context.uses_mpi()) return;
  fmt::print(stderr, "error: run it under mpirun, e.g. mpirun -np 2 {}\n\n{}", app.get_name(), app.help());
  std::exit(2);
}

}  // namespace triad::bench
