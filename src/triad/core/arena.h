#pragma once
// Activation memory, accounted per unit. A unit is (block, kind): block l's attention probabilities, the
// final LayerNorm output, the backward's scratch, ... (the kinds are the model's: model/dataflow.h). The
// arena knows each unit's size, the bytes live now, and the peak; the rematerialisation planner plans
// against exactly these numbers and the trainer reports them.
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

struct UnitStats {
  int block;
  int kind;
  size_t bytes;  // size of the last acquisition
  bool live;
};

class ActivationArena {
 public:
  // `name` turns a kind into its name for error messages.
  explicit ActivationArena(const char* (*name)(int kind)) : name_(name) {}
  ~ActivationArena();
  ActivationArena(const ActivationArena&) = delete;
  ActivationArena& operator=(const ActivationArena&) = delete;

  // A buffer of `bytes` for the unit (64-byte aligned, contents undefined). Acquiring a live unit again
  // returns its buffer when the size matches.
  void* acquire(int block, int kind, size_t bytes);
  template <typename Real>
  Real* acquire(int block, int kind, size_t count) {
    return static_cast<Real*>(acquire(block, kind, count * sizeof(Real)));
  }
  void release(int block, int kind);
  bool live(int block, int kind) const;
  void* get(int block, int kind) const;  // the live buffer, or nullptr

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
    int kind = -1;
    void* data = nullptr;
    size_t bytes = 0;
    bool live = false;
  };
  static int64_t key(int block, int kind) { return static_cast<int64_t>(block) * 64 + kind; }

  const char* (*name_)(int kind);
  std::map<int64_t, Slot> slots_;
  std::multimap<size_t, void*> free_;
  size_t live_bytes_ = 0, peak_bytes_ = 0, held_bytes_ = 0;
};

}  // namespace triad
