#pragma once
// The fused update (--fused-update): AdamW steps each parameter block as soon as the backward has its final
// gradient (Gpt::backward's on_block_done), and the block's gradient pages go back to the kernel at once
// (core/zero_pages.h), so the gradient is never held whole: its resident part is the tied embedding's
// (written by the head first and by the embedding last) and one block at a time, instead of 4 bytes per
// parameter.
//
// Gradient clipping stays exact: the clip factor needs the norm of the whole gradient before the first block
// may move, so with --clip > 0 a step runs the batch twice. The first forward and backward only measure the
// norm (each block's Σ g², its pages released); the second, on the same batch, updates each block with the
// gradient scaled as step() would scale it. That costs a second forward and backward per step (about twice
// the step time); --clip 0 needs one pass. The update is bit-identical to the unfused step when clipping
// does not fire (the same gradient, the same AdamW arithmetic per value) and within float rounding when it
// does (the norm sums the blocks in another order).
//
// One process only (no data, tensor or pipeline parallelism, no --grad-accum, no DP-SGD): the reduction of a
// bucket over ranks, and micro-batches, need the gradient to stay until later (TrainOptions::validate()
// refuses those combinations).

#include <cstdint>
#include <vector>

#include "triad/data/sampler.h"
#include "triad/model/gpt.h"
#include "triad/model/optimizer.h"
#include "triad/train/batch_gradient.h"

namespace triad {

class FusedUpdate {
 public:
  FusedUpdate(Gpt<float>& model, AdamW& adamw, const AdamWConfig& config, double clip, Sampler& sampler,
              int batch, int T);
  // The next batch's loss and gradient norm. With clip > 0 nothing moves yet (update() does it); with
  // --clip 0 the parameters are updated with learning rate `lr` in the same pass.
  BatchResult measure(float lr);
  double grad_norm() const { return norm_; }
  // The update of the batch measure() took (with clip > 0: its second pass).
  void update(float lr);

  // Resident gradient bytes at most, by the layout: the embedding block's and the largest other block's.
  static size_t peak_gradient_bytes(const ParameterLayout& layout);

 private:
  // One forward and backward of the batch; on_block_done takes the block's gradient.
  double pass(const Gpt<float>::BlockDone& on_block_done);
  void update_block(int block, float lr, float scale);

  Gpt<float>& model_;
  AdamW& adamw_;
  AdamWConfig config_;
  double clip_;
  Sampler& sampler_;
  int batch_, T_;
  std::vector<int32_t> windows_, inputs_, targets_;
  double norm_ = 0;
  bool updated_ = false;  // measure() already updated (--clip 0)
};

}  // namespace triad
