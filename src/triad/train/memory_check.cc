#include "triad/train/memory_check.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "triad/core/error.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/core/memory.h"
#include "triad/model/dataflow.h"
#include "triad/model/optimizer.h"
#include "triad/model/quantized_state.h"
#include "triad/remat/planner.h"
#include "triad/remat/profile.h"
#include "triad/train/fused_update.h"

namespace triad {

namespace {

// A bound on the elements of any one activation unit of one sequence, T (T NH + 4 (C + A + F) + V + 2) (the
// attention's probabilities, a token's widest row, the logits): past 2^62 the activation table's size_t
// products could overflow, and no machine holds that much anyway.
double unit_elements_bound(const GptConfig& c, int T) {
  const double widest_row = 4.0 * (double(c.d_model) + c.attention_width() + c.mlp());
  return double(T) * (double(T) * c.heads + widest_row + c.vocab + 2);
}

// The activations of one sequence (B = 1) that are live at once at least: keeping every unit, all of them;
// under a remat plan (which may drop any unit of a block), the embedding, the backward's scratch and the
// largest unit of one block.
// Under model parallelism, of one rank: `layers` blocks of its stage, its tensor slice of each unit.
double activation_elements(const GptConfig& c, int T, bool remat, int layers, int tensor) {
  if (unit_elements_bound(c, T) >= 0x1p62) return std::numeric_limits<double>::infinity();
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

// ", a checkpoint's gather 3.2GiB" when saving needs memory of its own.
std::string checkpoint_text(const TrainingMemory& m) {
  return m.checkpoint_bytes > 0 ? ", a checkpoint's gather " + bytes_text(m.checkpoint_bytes) : "";
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
  const StatePrecision states = parse_state_precision(options.optimizer_states);
  m.optimizer_bytes = adamw_state_bytes_per_parameter(states) * m.parameters / parts / (sharded ? data : 1);
  // A layout of a sane size gives the exact figures: the tensors that keep fp32 moments under 8-bit, the
  // gradient blocks of the fused update.
  if (parts == 1 && c.layers <= 100000 && m.parameters < 0x1p40) {
    const ParameterLayout layout(c);
    const size_t n = layout.count();
    if (states == StatePrecision::k8Bit) {
      const double fp32 = static_cast<double>(fp32_state_count(layout, 0, n));
      m.optimizer_bytes =
          (2 * kFloat * fp32 + adamw_state_bytes_per_parameter(states) * (n - fp32)) / (sharded ? data : 1);
    }
    if (options.fused_update)
      m.model_bytes = kFloat * n + static_cast<double>(FusedUpdate::peak_gradient_bytes(layout));
  }
  // A save under ZeRO-1 gathers the moments whole: fp32 two floats per parameter; 8-bit the codes travel
  // as floats, one moment at a time, beside the other's bytes (DistributedOptimizer::gather_quantized).
  if (sharded) m.checkpoint_bytes += (states == StatePrecision::k8Bit ? 6 : 8) * m.parameters / parts;
  if (parts > 1) m.checkpoint_bytes += 3 * kFloat * m.parameters;  // rank 0: weights, m and v whole
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
      "sequence(s) {}{}), more than this machine's {} of memory; {}",
      c.layers, c.d_model, c.heads, c.seq_len, c.vocab, m.parameters / 1e6, bytes_text(m.total()),
      bytes_text(m.model_bytes), bytes_text(m.optimizer_bytes), m.micro_batch, bytes_text(m.activation_bytes),
      checkpoint_text(m), bytes_text(available),
      m.activation_bytes > m.model_bytes + m.optimizer_bytes
          ? "use a smaller --batch or --seq-len, or --remat"
          : "use fewer --layers or a smaller --d-model");
}

namespace {

// The activations of one micro-batch: every unit kept, or the least a remat plan reaches (the full plan,
// or sqrt's when that is lower).
struct ActivationRange {
  double keep_all = 0, least = 0;
};
ActivationRange activation_range(const TrainOptions& options, int world) {
  const GptConfig& c = options.model;
  const int B = std::max(1, options.micro_batch(world));
  const ActivationProfile profile = ActivationProfile::for_shape(c, B, c.seq_len);
  ActivationRange r;
  r.keep_all = static_cast<double>(simulate(RematPlan::keep_all(c.layers), profile).peak_bytes);
  r.least = r.keep_all;
  for (PlannerKind kind : {PlannerKind::kFull, PlannerKind::kSqrt}) {
    r.least =
        std::min(r.least, static_cast<double>(simulate(make_plan(kind, profile, 0), profile).peak_bytes));
  }
  return r;
}

std::string describe(const TrainingMemory& m) {
  return fmt::format("weights and gradients {}, AdamW state {}, activations {}{}, the process {}",
                     bytes_text(m.model_bytes), bytes_text(m.optimizer_bytes), bytes_text(m.activation_bytes),
                     checkpoint_text(m), bytes_text(kProcessBytes));
}

}  // namespace

TrainOptions fit_training_memory(const TrainOptions& given, int world, bool resuming, bool log) {
  if (given.memory_limit.empty()) {
    check_training_memory(given, world);
    return given;
  }
  const double limit = *parse_bytes(given.memory_limit);
  const GptConfig& c = given.model;
  const bool choose_remat = !given.remat.active();
  // Past a sane size the layout and the activation profile are not worth building: refused below anyway.
  const bool sane =
      c.layers <= 100000 && c.parameter_count() < 0x1p40 && unit_elements_bound(c, c.seq_len) < 0x1p40;
  const ActivationRange activations = sane ? activation_range(given, world) : ActivationRange{};
  // The fused update needs one process and one micro-batch (TrainOptions::validate()).
  TrainOptions probe = given;
  probe.fused_update = true;
  bool can_fuse = given.fused_update;
  try {
    if (!can_fuse) probe.validate(world), can_fuse = true;
  } catch (const Error&) {
  }
  std::vector<std::pair<std::string, bool>> combinations;  // (states, fused), cheapest first
  for (const char* states : {"fp32", "8bit"}) {
    if (resuming && given.optimizer_states != states) continue;
    combinations.push_back({states, given.fused_update});
  }
  if (can_fuse && !given.fused_update) {
    for (const char* states : {"8bit", "fp32"}) {
      if (resuming ? given.optimizer_states == states : std::string(states) == "8bit")
        combinations.push_back({states, true});
    }
  }
  TrainingMemory least;
  double least_total = std::numeric_limits<double>::infinity();
  for (const auto& [states, fused] : combinations) {
    TrainOptions o = given;
    o.optimizer_states = states;
    o.fused_update = fused;
    TrainingMemory m = training_memory(o, world);
    if (sane && choose_remat) m.activation_bytes = activations.keep_all;
    const double state = m.model_bytes + m.optimizer_bytes + m.checkpoint_bytes + kProcessBytes;
    std::string chose = fmt::format("--optimizer-states {}{}", states, fused ? " --fused-update" : "");
    if (sane && choose_remat && state + activations.keep_all > limit && state + activations.least <= limit) {
      // The rest of the limit for activations, the optimal planner's budget (MiB, rounded down).
      const double budget = std::floor((limit - state) / (1 << 20));
      o.remat.budget = fmt::format("{}MiB", budget);
      m.activation_bytes = budget * (1 << 20);
      chose += " --activation-memory " + o.remat.budget;
    }
    if (state + m.activation_bytes <= limit) {
      if (log) {
        log_info("--memory-limit {}: {} (estimated peak {}: {})", given.memory_limit, chose,
                 bytes_text(state + m.activation_bytes), describe(m));
      }
      check_training_memory(o, world);
      return o;
    }
    if (sane && choose_remat) m.activation_bytes = activations.least;
    if (state + m.activation_bytes < least_total) least_total = state + m.activation_bytes, least = m;
  }
  fail_usage(
      "--memory-limit {}: --layers {} --d-model {} --heads {} --seq-len {} (vocabulary {}, {:.1f}M "
      "parameters) "
      "need at least {} even with the least of --optimizer-states, --fused-update and rematerialization "
      "({}); "
      "use fewer --layers, a smaller --d-model, --batch or --seq-len, or a larger limit",
      given.memory_limit, c.layers, c.d_model, c.heads, c.seq_len, c.vocab, c.parameter_count() / 1e6,
      bytes_text(least_total), describe(least));
}

}  // namespace triad
