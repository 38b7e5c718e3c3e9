#pragma once
// Whether a model can be trained here at all, from the options alone, before anything is allocated. The
// sizes grow without bound with --layers and --d-model; a model that cannot fit used to grow to the
// machine's memory (15 GB and more for --layers 100000) before the allocation that failed.

#include "triad/train/options.h"

namespace triad {

// What one rank holds while it trains, at least (in double: the products overflow size_t for absurd flags).
struct TrainingMemory {
  double parameters = 0;
  double model_bytes = 0;  // the weights and their gradients (--fused-update: the blocks resident at once)
  double optimizer_bytes = 0;   // AdamW's two moments (this rank's share under --zero 1; 8-bit or fp32)
  double activation_bytes = 0;  // one micro-batch's: every unit kept, or what a --remat plan cannot drop
  int micro_batch = 0;          // sequences in that micro-batch
  // What writing a checkpoint adds: under --zero 1 the moments gathered whole on every rank; under
  // model parallelism the whole model's weights and moments on rank 0. Without either the optimizer
  // lends its own moments to the writer (DistributedOptimizer::with_state): nothing.
  double checkpoint_bytes = 0;
  double total() const { return model_bytes + optimizer_bytes + activation_bytes + checkpoint_bytes; }
};

TrainingMemory training_memory(const TrainOptions& options, int world);

// A usage error naming the model's flags and what it needs when training_memory() exceeds this machine's
// memory (physical_memory_bytes()).
void check_training_memory(const TrainOptions& options, int world);

// --memory-limit: the options with the cheapest combination of --optimizer-states, --fused-update and an
// --activation-memory budget whose training_memory() and the process's own memory (kProcessBytes) fit the
// limit, logged when `log`. Cheapest: exact before approximate, fast before slow — fp32 states and every
// activation kept; then a remat budget (recomputes, exact); then 8-bit states (the loss moves by under 1 %,
// docs/memory.md); then the fused update (a second forward and backward per step). What the user gave
// (--remat or --activation-memory, a run's --optimizer-states on resume) stays. A model that fits in none
// is a usage error naming the limit and the least it needs. Then check_training_memory().
TrainOptions fit_training_memory(const TrainOptions& options, int world, bool resuming, bool log);

// What the process holds besides the training state and activations (code, libraries, the data's index,
// allocator slack). With it the estimate came within 1 % of the measured peak RSS at 404M and 535M
// parameters (docs/results/2026-12-05-memory-fit.md).
constexpr double kProcessBytes = 96.0 * (1 << 20);

}  // namespace triad
