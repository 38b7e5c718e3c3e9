#include "triad/remat/schedule.h"

#include <utility>

#include "triad/core/error.h"

namespace triad {

namespace {

using Unit = std::pair<int, Act>;

Unit block_input(int block) {
  return block == 0 ? Unit{-1, Act::kEmbed} : Unit{block - 1, Act::kBlockOut};
}

// What each per-block unit is computed from.
std::vector<Unit> inputs_of(int block, Act kind) {
  switch (kind) {
    case Act::kLn1:
      return {block_input(block)};
    case Act::kQkv:
      return {{block, Act::kLn1}};
    case Act::kAttProbs:
      return {{block, Act::kQkv}};
    case Act::kAttOut:
      return {{block, Act::kAttProbs}, {block, Act::kQkv}};
    case Act::kRes2:
      return {{block, Act::kAttOut}, block_input(block)};
    case Act::kLn2:
      return {{block, Act::kRes2}};
    case Act::kFc:
      return {{block, Act::kLn2}};
    case Act::kGelu:
      return {{block, Act::kFc}};
    case Act::kBlockOut:
      return {{block, Act::kGelu}, {block, Act::kRes2}};
    default:
      fail("internal: {} is not a per-block unit", act_name(kind));
  }
}

// The forward op after which `input` is no longer needed by the forward.
bool is_last_forward_use(Unit input, int block, Act kind) {
  auto [b, k] = input;
  switch (k) {
    case Act::kLn1:
      return kind == Act::kQkv;
    case Act::kQkv:
      return kind == Act::kAttOut;
    case Act::kAttProbs:
      return kind == Act::kAttOut;
    case Act::kAttOut:
      return kind == Act::kRes2;
    case Act::kRes2:
      return kind == Act::kBlockOut;
    case Act::kLn2:
      return kind == Act::kFc;
    case Act::kFc:
      return kind == Act::kGelu;
    case Act::kGelu:
      return kind == Act::kBlockOut;
    case Act::kBlockOut:
      return kind == Act::kRes2 && block == b + 1;  // the next block's residual
    default:
      return false;
  }
}

// The units a block's backward reads, in the order they are materialised.
constexpr Act kBackwardReads[] = {Act::kLn1,  Act::kQkv, Act::kAttProbs, Act::kAttOut,
                                  Act::kRes2, Act::kLn2, Act::kFc,       Act::kGelu};

}  // namespace

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
    for (Act kind : kBlockUnits) {
      compute(events, l, kind, false);
      for (Unit input : inputs_of(l, kind)) {
        if (!plan_.keeps(input.first, input.second) && is_last_forward_use(input, l, kind)) {
          release(events, input.first, input.second);
        }
      }
    }
  }
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
  if (!live(-1, Act::kLogits))
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
    for (Act kind : kBackwardReads) materialize(events, l, kind);
    events.block_backward(l);
    for (Act kind : kBackwardReads) release(events, l, kind);
    release(events, x.first, x.second);
  }
  events.embed_backward();
  release(events, -1, Act::kScratch);
}

}  // namespace triad
