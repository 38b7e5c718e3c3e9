#pragma once
// The model's dataflow as data: every activation unit of one training step — what it is computed from, how
// big it is, whether the backward reads it — is one row of a table (dataflow.cc). The forward's order of
// work and what the backward materialises (model/schedule.h), the arena's unit sizes and the
// rematerialisation planner's profile (remat/profile.h) are all derived from it; a new unit is a new row.
//
// Units are per transformer block (one per block l, listed in forward order) or whole-model (block -1).

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "triad/model/config.h"

namespace triad {

enum class Act : uint8_t {
  // per transformer block, in forward order
  kLn1,       // LayerNorm 1 output + mean, rstd         (B, T, C) + 2 (B, T)
  kQkv,       // packed q, k, v                          (B, T, 3A), A = NH·HS (C unless --head-size)
  kAttProbs,  // attention probabilities                 (B, NH, T, T)
  kAttOut,    // attention output before projection      (B, T, A)
  kRes2,      // residual after attention                (B, T, C)
  kLn2,       // LayerNorm 2 output + mean, rstd         (B, T, C) + 2 (B, T)
  kFc,        // MLP pre-activation                      (B, T, F), F = 4C unless --mlp-width
  kGelu,      // GELU output                             (B, T, F)
  kBlockOut,  // block output = next block's input       (B, T, C)
  // whole model (block = -1)
  kEmbed,        // token + position embedding = block 0's input (B, T, C)
  kLnf,          // final LayerNorm output + mean, rstd     (B, T, C) + 2 (B, T)
  kLogits,       // logits (the backward turns them into their gradient)  (B, T, V)
  kLogitsSlice,  // one vocabulary slice of the logits when they are not kept  (B, T, 2048)
  kLoss,         // per-position losses and logsumexp       2 (B, T)
  kScratch,      // gradient buffers of the backward        (B, T, max(C, A) + C + 2 max(F, 3A))
  kCount
};

// The sizes a unit's shape is made of, for one (B, T) step of a model.
// TP: tensor-parallel ranks; the units of the split layers (q, k, v and attention over this rank's heads,
// the MLP's hidden layer, the logits over its vocabulary slice) hold 1 / TP of their whole size.
struct UnitDims {
  size_t B, T, C, NH, V, TP = 1;
  size_t F = 0;  // MLP units
  size_t A = 0;  // attention width NH·HS
  size_t BT() const { return B * T; }
  size_t BTC() const { return B * T * C; }
};

// An input of a per-block unit: a unit of the same block, or the block's input (the previous block's
// output; block 0's is the embedding).
struct UnitInput {
  bool block_input = false;
  Act kind = Act::kCount;  // when not block_input
};

struct UnitInfo {
  Act kind;
  const char* name;
  bool per_block;
  std::vector<UnitInput> inputs;  // per-block units: what the forward computes it from
  bool read_by_backward;          // per-block units: the block's backward reads it
  size_t (*elements)(const UnitDims&);
};

const UnitInfo& unit_info(Act kind);
const char* act_name(Act kind);

// The per-block units in forward order (a remat plan has one bit per entry), and those a block's backward
// reads, in the order it materialises them.
std::span<const Act> block_units();
std::span<const Act> backward_reads();
inline constexpr int kBlockUnitCount = 9;  // block_units().size(), checked against the table

// A unit of one step: (block, kind), block -1 for whole-model units.
using Unit = std::pair<int, Act>;

// Block l's input: the previous block's output, or the embedding for block 0.
inline Unit block_input(int block) {
  return block == 0 ? Unit{-1, Act::kEmbed} : Unit{block - 1, Act::kBlockOut};
}
// What the forward computes a per-block unit from.
std::vector<Unit> inputs_of(int block, Act kind);
// True when the forward op that produces (block, kind) is the last forward reader of `input`: after it, a
// unit that the plan drops can be released.
bool is_last_forward_use(Unit input, int block, Act kind);

UnitDims unit_dims(const GptConfig& config, int B, int T, int tensor = 1);
// Elements (of the model's scalar type) of a unit for a (B, T) step, on one of `tensor` ranks.
size_t unit_elements(const GptConfig& config, int B, int T, Act kind, int tensor = 1);

}  // namespace triad
