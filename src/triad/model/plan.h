#pragma once
// A rematerialisation plan: per transformer block, which activation units the forward keeps for the backward
// (bit set) and which it drops, to be recomputed just before the block's backward (paper Eq. 8: z = 1 store,
// z = 0 recompute). Units are the arena's per-block kinds, ln1 ... gelu and block_out (the next block's
// input), and the logits: dropped, the LM head computes the loss one vocabulary slice at a time and the
// backward recomputes each slice. The last block's output is always kept (the final LayerNorm's backward
// reads it), and so is the embedding (block 0's input).

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "triad/model/dataflow.h"

namespace triad {

// One bit per entry of block_units() (model/dataflow.h).
inline constexpr uint16_t kKeepAll = (1u << kBlockUnitCount) - 1;
inline uint16_t unit_bit(Act kind) {
  return static_cast<uint16_t>(1u << static_cast<int>(kind));
}

struct RematPlan {
  std::vector<uint16_t> keep;  // per block, bit unit_bit(kind) set = stored
  bool keep_logits = true;

  static RematPlan keep_all(int layers) {
    return {std::vector<uint16_t>(static_cast<size_t>(layers), kKeepAll)};
  }
  int layers() const { return static_cast<int>(keep.size()); }
  bool keeps(int block, Act kind) const;  // embedding and the last block_out: always
  void normalize();                       // sets the bits that are always on
  int dropped_units() const;
  nlohmann::json to_json()
      const;  // {"h.0": "ln1 qkv ...kept... | dropped: att_probs gelu", ...} compact form
  bool operator==(const RematPlan&) const = default;
};

}  // namespace triad
