#pragma once
// The flags of data-parallel communication, shared by the commands that run under mpirun (train, probe).

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"

namespace triad::cli {

struct CommFlags {
  std::string grad_compression = "none";
  double bucket_mb = 4;
  bool hierarchical = false;
  double comm_timeout = 300;
  std::string comm_progress = "thread";
  int poll_us = 50;
  int64_t topk_warmup = 0;
  size_t int8_chunk = 256;
  bool int8_stochastic = false;
  std::string topology;
  int ranks_per_node = 0;
};

// --comm-timeout and --ranks-per-node: what every command that starts MPI needs.
void add_context_options(CLI::App& command, CommFlags& flags);
// Everything GradSync needs: --grad-compression, --bucket-mb, --hierarchical, --comm-progress, --poll-us,
// --topk-warmup, --int8-chunk, --int8-stochastic, --topology (and the context options).
void add_comm_options(CLI::App& command, CommFlags& flags);

comm::ContextOptions context_options(const CommFlags& flags);
// Parses and checks the flags (usage errors name the flag) and loads --topology. `seed` seeds stochastic
// rounding and PowerSGD's first factor; `zero1` is --zero 1.
comm::GradSyncOptions grad_sync_options(const CommFlags& flags, uint64_t seed, bool zero1);

}  // namespace triad::cli
