#include "triad/train/memory_check.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/memory.h"
#include "triad/model/dataflow.h"
#include "triad/model/optimizer.h"

namespace triad {

namespace {

// The activations of one sequence (B = 1) that are live at once at least: keeping every unit, all of them;
// under a remat plan (which may drop any unit of a block), the embedding, the backward's scratch and the
// largest unit of one block.
// Under model parallelism, of one rank: `layers` blocks of its stage, its tensor slice of each unit.
double activation_elements(const GptConfig& c, int T, bool remat, int layers, int tensor) {
  // Every unit of one sequence has at most T (T NH + 16 C + V + 2) elements; past 2^62 the table's size_t
  // products could overflow, and no machine holds that much anyway.
  const double bound = double(T) * (double(T) * c.heads + 16.0 * c.d_model + c.vocab + 2);
  if (bound >= 0x1p62) return std::numeric_limits<double>::infinity();
  auto elements = [&](Act kind) { return static_cast<double>(unit_elements(c, 1, T, kind, tensor)); };
  double per_block = 0, largest = 0;
  for (Act kind : block_units()) {
    per_block += elements(kind);
    largest = std::max(largest, elements(kind));
  }
  if (remat) return elements(Act::kEmbed) + elements(Act::kScratch) + largest;
  double whole_model = 0;
  for (Act kind : {Act::kEmbed, Act::kLnf, Act::kLogits, Act::kLoss, Act::kScratch})
    whole_model += elements(kind);
  return layers * per_block + whole_model;
}

// "1.25GiB", and beyond what format_bytes takes, "9.3e+19 bytes".
std::string bytes_text(double bytes) {
  return bytes < 0x1p60 ? format_bytes(static_cast<size_t>(bytes)) : fmt::format("{:.2g} bytes", bytes);
}

}  // namespace

TrainingMemory training_memory(const TrainOptions& options, int world) {
  const GptConfig& c = options.model;
  constexpr double kFloat = sizeof(float);
  TrainingMemory m;
  m.parameters = c.parameter_count();
  // A model-parallel rank holds about 1 / (tensor x pipeline) of the model (its stage's blocks, its slices).
  const int parts = options.tensor_parallel * options.pipeline_parallel, data = options.data_parallel(world);
  m.model_bytes = 2 * kFloat * m.parameters / parts;
  const bool sharded = options.comm.zero == 1 && data > 1;
  m.optimizer_bytes = adamw_state_bytes_per_parameter(parse_state_precision(options.optimizer_states)) *
                      m.parameters / parts / (sharded ? data : 1);
  // DP-SGD runs one sequence at a time; with a remat plan at least one block's units are live at once.
  m.micro_batch = options.dp() ? 1 : std::max(1, options.micro_batch(world));
  const int stage_layers = (c.layers + options.pipeline_parallel - 1) / options.pipeline_parallel;
  m.activation_bytes =
      kFloat * m.micro_batch *
      activation_elements(c, c.seq_len, options.remat.active(), stage_layers, options.tensor_parallel);
  return m;
}

void check_training_memory(const TrainOptions& options, int world) {
  const TrainingMemory m = training_memory(options, world);
  const double available = static_cast<double>(physical_memory_bytes());
  if (m.total() <= available) return;
  const GptConfig& c = options.model;
  fail_usage(
      "--layers {} --d-model {} --heads {} --seq-len {} (vocabulary {}) make a model of {:.1f}M parameters; "
      "training it takes at least {} (weights and gradients {}, AdamW state {}, activations of {} "
      "sequence(s) {}), more than this machine's {} of memory; {}",
      c.layers, c.d_model, c.heads, c.seq_len, c.vocab, m.parameters / 1e6, bytes_text(m.total()),
      bytes_text(m.model_bytes), bytes_text(m.optimizer_bytes), m.micro_batch, bytes_text(m.activation_bytes),
      bytes_text(available),
      m.activation_bytes > m.model_bytes + m.optimizer_bytes
          ? "use a smaller --batch or --seq-len, or --remat"
          : "use fewer --layers or a smaller --d-model");
}

}  // namespace triad
