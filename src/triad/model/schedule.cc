#include "triad/model/schedule.h"

#include "triad/core/error.h"

namespace triad {

void StepSchedule::compute(StepEvents& events, int block, Act kind, bool recompute) {
  events.compute(block, kind, recompute);
  live(block, kind) = true;
}

void StepSchedule::release(StepEvents& events, int block, Act kind) {
  if (!live(block, kind)) return;
  events.release(block, kind);
  live(block, kind) = false;
}

void StepSchedule::forward(StepEvents& events, bool with_loss) {
  compute(events, -1, Act::kEmbed, false);
  for (int l = 0; l < layers_; ++l) {
    for (Act kind : block_units()) {
      compute(events, l, kind, false);
      for (Unit input : inputs_of(l, kind)) {
        if (!plan_.keeps(input.first, input.second) && is_last_forward_use(input, l, kind)) {
          release(events, input.first, input.second);
        }
      }
    }
  }
  if (!head_) return;
  compute(events, -1, Act::kLnf, false);
  if (!with_loss || plan_.keep_logits) {
    compute(events, -1, Act::kLogits, false);
    if (with_loss) compute(events, -1, Act::kLoss, false);
  } else {  // the loss runs the LM head slice by slice
    compute(events, -1, Act::kLogitsSlice, false);
    compute(events, -1, Act::kLoss, false);
    release(events, -1, Act::kLogitsSlice);
  }
}

void StepSchedule::materialize(StepEvents& events, int block, Act kind) {
  if (live(block, kind)) return;
  if (block < 0) fail("internal: whole-model unit {} is gone before the backward", act_name(kind));
  for (Unit input : inputs_of(block, kind)) materialize(events, input.first, input.second);
  compute(events, block, kind, true);
}

void StepSchedule::backward(StepEvents& events) {
  compute(events, -1, Act::kScratch, false);
  if (head_ && !live(-1, Act::kLogits))
    compute(events, -1, Act::kLogitsSlice, true);  // the head recomputes its slices
  events.head_backward();
  release(events, -1, Act::kLogitsSlice);
  release(events, -1, Act::kLoss);
  release(events, -1, Act::kLogits);
  release(events, -1, Act::kLnf);
  release(events, layers_ - 1, Act::kBlockOut);
  for (int l = layers_ - 1; l >= 0; --l) {
    Unit x = block_input(l);
    materialize(events, x.first, x.second);
    for (Act kind : backward_reads()) materialize(events, l, kind);
    events.block_backward(l);
    for (Act kind : backward_reads()) release(events, l, kind);
    release(events, x.first, x.second);
  }
  events.embed_backward();
  release(events, -1, Act::kScratch);
}

}  // namespace triad
