#pragma once
// Activation memory, accounted per named unit. A unit is (block, kind): block l's attention probabilities,
// the final LayerNorm output, the backward's scratch, ... The arena knows each unit's size, the bytes live
// now, and the peak; the rematerialisation planner plans against exactly these numbers and the trainer
// reports them.
//
// Released buffers go to a free list keyed by size and are handed out again to the next request of that
// size. A training step asks for the same sizes every time, so after the first step nothing is allocated
// or faulted in, and the memory held equals the peak of what was live at once.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace triad {

enum class Act : uint8_t {
  // per transformer block
  kLn1,       // LayerNorm 1 output + mean, rstd         (B, T, C) + 2 (B, T)
  kQkv,       // packed q, k, v                          (B, T, 3C)
  kAttProbs,  // attention probabilities                 (B, NH, T, T)
  kAttOut,    // attention output before projection      (B, T, C)
  kRes2,      // residual after attention                (B, T, C)
  kLn2,       // LayerNorm 2 output + mean, rstd         (B, T, C) + 2 (B, T)
  kFc,        // MLP pre-activation                      (B, T, 4C)
  kGelu,      // GELU output                             (B, T, 4C)
  kBlockOut,  // block output = next block's input       (B, T, C)
  // whole model (block = -1)
  kEmbed,        // token + position embedding = block 0's input (B, T, C)
  kLnf,          // final LayerNorm output + mean, rstd     (B, T, C) + 2 (B, T)
  kLogits,       // logits (the backward turns them into their gradient)  (B, T, V)
  kLogitsSlice,  // one vocabulary slice of the logits when they are not kept  (B, T, 2048)
  kLoss,         // per-position losses and logsumexp       2 (B, T)
  kScratch,      // gradient buffers of the backward
  kCount
};
const char* act_name(Act kind);

struct UnitStats {
  int block;
  Act kind;
  size_t bytes;  // size of the last acquisition
  bool live;
};

class ActivationArena {
 public:
  ActivationArena() = default;
  ~ActivationArena();
  ActivationArena(const ActivationArena&) = delete;
  ActivationArena& operator=(const ActivationArena&) = delete;

  // A buffer of `bytes` for the unit (64-byte aligned, contents undefined). Acquiring a live unit again
  // returns its buffer when the size matches.
  void* acquire(int block, Act kind, size_t bytes);
  template <typename Real>
  Real* acquire(int block, Act kind, size_t count) {
    return static_cast<Real*>(acquire(block, kind, count * sizeof(Real)));
  }
  void release(int block, Act kind);
  bool live(int block, Act kind) const;
  void* get(int block, Act kind) const;  // the live buffer, or nullptr

  size_t live_bytes() const { return live_bytes_; }
  size_t peak_bytes() const { return peak_bytes_; }
  size_t held_bytes() const { return held_bytes_; }  // live + free lists
  void reset_peak() { peak_bytes_ = live_bytes_; }
  std::vector<UnitStats> units() const;
  // Returns every free buffer to the system.
  void trim();

 private:
  struct Slot {
    int block = 0;
    Act kind = Act::kCount;
    void* data = nullptr;
    size_t bytes = 0;
    bool live = false;
  };
  static int64_t key(int block, Act kind) {
    return static_cast<int64_t>(block) * 64 + static_cast<int>(kind);
  }

  std::map<int64_t, Slot> slots_;
  std::multimap<size_t, void*> free_;
  size_t live_bytes_ = 0, peak_bytes_ = 0, held_bytes_ = 0;
};

}  // namespace triad
