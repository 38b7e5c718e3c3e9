#pragma once
// Everything a data-parallel command chooses about communication, as plain values: the trainer keeps them
// in its options (and checkpoints), the CLI maps flags onto them (cli/comm_options.h).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"

namespace triad::comm {

struct CommOptions {
  std::string grad_compression = "none";  // --grad-compression
  double bucket_mb = 4;                   // --bucket-mb
  bool hierarchical = false;              // --hierarchical
  int zero = 0;                           // --zero: 0 or 1 (optimizer state sharded over ranks)
  int64_t topk_warmup = 0;                // --topk-warmup
  size_t int8_chunk = 256;                // --int8-chunk
  bool int8_stochastic = false;           // --int8-stochastic
  // How, not what (they change no result beyond rounding): these may change when a run resumes.
  double comm_timeout = 300;             // --comm-timeout
  std::string comm_progress = "thread";  // --comm-progress
  int poll_us = 50;                      // --poll-us
  std::string topology;                  // --topology
  int ranks_per_node = 0;                // --ranks-per-node

  // Keys whose values may differ between a run and its resumption.
  static bool may_change_on_resume(const std::string& key);
};

// As JSON: keys named after the flags ("grad_compression", ...), which the trainer merges into its options;
// absent keys keep their defaults (runs from before data parallelism).
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(CommOptions, grad_compression, bucket_mb, hierarchical, zero,
                                                topk_warmup, int8_chunk, int8_stochastic, comm_timeout,
                                                comm_progress, poll_us, topology, ranks_per_node)

ContextOptions context_options(const CommOptions& options);
// Parses and checks the options (usage errors name the flag) and loads --topology. `seed` seeds stochastic
// rounding and PowerSGD's first factor.
GradSyncOptions grad_sync_options(const CommOptions& options, uint64_t seed);

}  // namespace triad::comm
