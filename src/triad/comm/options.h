#pragma once
// Everything a data-parallel command chooses about communication, as plain values, and the table that
// declares them as flags (core/options.h): the trainer keeps them in its options (and checkpoints); the
// probe command takes the context's two.

#include <cstdint>
#include <string>

#include "triad/core/options.h"

namespace triad::comm {

struct ContextOptions;
struct GradSyncOptions;

struct CommOptions {
  std::string grad_compression = "none";  // --grad-compression
  double bucket_mb = 4;                   // --bucket-mb
  bool hierarchical = false;              // --hierarchical
  int zero = 0;                           // --zero: 0 or 1 (optimizer state sharded over ranks)
  int64_t topk_warmup = 0;                // --topk-warmup
  uint64_t int8_chunk = 256;              // --int8-chunk
  bool int8_stochastic = false;           // --int8-stochastic
  // How, not what (they change no result beyond rounding): each command gives its own.
  double comm_timeout = 300;             // --comm-timeout
  std::string comm_progress = "thread";  // --comm-progress
  int poll_us = 50;                      // --poll-us
  std::string topology;                  // --topology
  int ranks_per_node = 0;                // --ranks-per-node

  // Every flag above.
  static const OptionTable<CommOptions>& options();
  // --comm-timeout and --ranks-per-node: what every command that starts MPI needs.
  static OptionTable<CommOptions> context_options();
};

ContextOptions context_options(const CommOptions& options);
// Parses and checks the options (usage errors name the flag) and loads --topology. `seed` seeds stochastic
// rounding and PowerSGD's first factor.
GradSyncOptions grad_sync_options(const CommOptions& options, uint64_t seed);

}  // namespace triad::comm
