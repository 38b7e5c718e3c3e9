#pragma once
// The flags of data-parallel communication, shared by the commands that run under mpirun (train, probe).

#include <CLI/CLI.hpp>

#include "triad/comm/options.h"

namespace triad::cli {

// --comm-timeout and --ranks-per-node: what every command that starts MPI needs.
void add_context_options(CLI::App& command, comm::CommOptions& flags);
// Everything GradSync needs: --grad-compression, --bucket-mb, --hierarchical, --comm-progress, --poll-us,
// --topk-warmup, --int8-chunk, --int8-stochastic, --topology (and the context options), in help `group`
// when one is given.
void add_comm_options(CLI::App& command, comm::CommOptions& flags, const std::string& group = "");

}  // namespace triad::cli
