#pragma once
// The order of work in one training step under a rematerialisation plan, as events. The engine executes
// the events (running kernels on arena buffers); the planner's simulator replays the very same events
// counting bytes and recompute time. One walker for both is what makes the predicted peak the measured one.
//
// Forward: every unit is computed in order; a dropped unit is released right after its last consumer in
// the forward ran. Backward: for each block from the last, the units its backward reads are materialised —
// a missing unit is recomputed after its own missing inputs — then the block's backward runs and its
// units are released. A dropped block output makes the previous block's units recomputed early, and they
// stay until that block's backward: Chen et al.'s segment recomputation falls out of this rule.

#include <array>
#include <vector>

#include "triad/model/dataflow.h"
#include "triad/model/plan.h"

namespace triad {

class StepEvents {
 public:
  virtual ~StepEvents() = default;
  // Produce the unit into the arena; all its inputs are live.
  virtual void compute(int block, Act kind, bool recompute) = 0;
  virtual void release(int block, Act kind) = 0;
  // Backward of the LM head and final LayerNorm (reads logits, loss, lnf and the last block output); on a
  // stage without the head, placing the gradient of its output.
  virtual void head_backward() = 0;
  virtual void block_backward(int block) = 0;
  virtual void embed_backward() = 0;
};

class StepSchedule {
 public:
  // head: the model ends in the final LayerNorm and LM head. A pipeline stage without it ends at its last
  // block's output (kept for the next stage), and its backward starts from that output's gradient, which
  // head_backward() puts in place.
  StepSchedule(const RematPlan& plan, int layers, bool head = true)
      : plan_(plan), layers_(layers), head_(head), live_(static_cast<size_t>(layers) + 1) {}
  // with_loss: compute per-position losses (training and evaluation) after the logits.
  void forward(StepEvents& events, bool with_loss);
  void backward(StepEvents& events);

 private:
  void compute(StepEvents& events, int block, Act kind, bool recompute);
  void materialize(StepEvents& events, int block, Act kind);
  void release(StepEvents& events, int block, Act kind);
  bool& live(int block, Act kind) { return live_[static_cast<size_t>(block + 1)][static_cast<size_t>(kind)]; }

  const RematPlan& plan_;
  int layers_;
  bool head_;
  std::vector<std::array<bool, static_cast<size_t>(Act::kCount)>> live_;  // index 0: whole-model units
};

}  // namespace triad
