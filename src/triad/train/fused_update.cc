#include "triad/train/fused_update.h"

#include <algorithm>
#include <cmath>

#include "triad/core/error.h"
#include "triad/core/zero_pages.h"
#include "triad/kernels/vector_ops.h"
#include "triad/train/evaluate.h"

namespace triad {

FusedUpdate::FusedUpdate(Gpt<float>& model, AdamW& adamw, const AdamWConfig& config, double clip,
                         Sampler& sampler, int batch, int T)
    : model_(model),
      adamw_(adamw),
      config_(config),
      clip_(clip),
      sampler_(sampler),
      batch_(batch),
      T_(T),
      windows_(static_cast<size_t>(batch) * (T + 1)),
      inputs_(static_cast<size_t>(batch) * T),
      targets_(inputs_.size()) {
  if (adamw.offset() != 0 || adamw.count() != model.num_params())
    fail("internal: the fused update takes the whole model in one process");
  // From here on the gradient is zero between steps without being written (model.zero_grads() would make
  // every page resident again).
  release_to_zero(model.grads(), model.num_params());
  prefer_huge_pages(model.grads(), model.num_params());
}

size_t FusedUpdate::peak_gradient_bytes(const ParameterLayout& layout) {
  size_t largest = 0;
  for (size_t b = 1; b < layout.blocks().size(); ++b) largest = std::max(largest, layout.blocks()[b].count);
  return (layout.blocks()[0].count + largest) * sizeof(float);
}

double FusedUpdate::pass(const Gpt<float>::BlockDone& on_block_done) {
  // The mean token loss over the batch, as LanguageModelBatches computes it in one micro-batch.
  const double loss = model_.forward(inputs_.data(), targets_.data(), batch_, T_);
  // The backward finishes the blocks last to first: embed (0), h.0 … h.L-1 (1 … L), ln_f (L + 1). The LM
  // head writes the embedding's gradient first. Each block's gradient pages are made writable just before
  // the backward reaches it, so that what is resident stays the embedding's and one block's.
  const std::vector<ParamBlock>& blocks = model_.layout().blocks();
  const int ln_f = static_cast<int>(blocks.size()) - 1;
  auto prefault = [&](int block) {
    const ParamBlock& b = blocks[static_cast<size_t>(block)];
    prefault_for_write(model_.grads() + b.offset, b.count);
  };
  for (int block : {0, ln_f, ln_f - 1}) prefault(block);
  model_.backward(1.0f / static_cast<float>(static_cast<size_t>(batch_) * T_), [&](int block) {
    on_block_done(block);
    if (block >= 2 && block < ln_f) prefault(block - 1);  // h.l done: h.l-1 is next
  });
  return loss;
}

void FusedUpdate::update_block(int block, float lr, float scale) {
  const ParamBlock& b = model_.layout().blocks()[static_cast<size_t>(block)];
  float* grads = model_.grads() + b.offset;
  if (scale != 1.0f) scale_in_place(grads, b.count, scale);
  adamw_.update_range(model_.params(), model_.grads(), lr, config_, b.offset, b.offset + b.count);
  release_to_zero(grads, b.count);
}

BatchResult FusedUpdate::measure(float lr) {
  sampler_.next_batch(batch_, windows_.data());
  split_windows(windows_.data(), batch_, T_, inputs_.data(), targets_.data());
  double sq = 0;
  updated_ = clip_ <= 0;
  if (updated_) adamw_.begin_step();
  BatchResult r;
  r.totals.loss_sum = pass([&](int block) {
    const ParamBlock& b = model_.layout().blocks()[static_cast<size_t>(block)];
    const double block_sq = sum_of_squares(model_.grads() + b.offset, b.count);
    if (!std::isfinite(block_sq)) {
      fail("the gradient of parameter block {} is not finite; training stopped{}", b.name,
           updated_ ? " (under --clip 0 the blocks the backward finished before it were updated already)"
                    : " before the update");
    }
    sq += block_sq;
    if (updated_) {
      update_block(block, lr, 1.0f);
    } else {
      release_to_zero(model_.grads() + b.offset, b.count);
    }
  });
  norm_ = std::sqrt(sq);
  r.totals.loss_count = 1;
  r.totals.sequences = batch_;
  r.recompute_seconds = model_.recompute_seconds();
  return r;
}

void FusedUpdate::update(float lr) {
  if (updated_) return;
  // step()'s clipping: the same factor, in float, applied to each block before its update.
  const float scale = norm_ > clip_ ? static_cast<float>(clip_ / norm_) : 1.0f;
  adamw_.begin_step();
  pass([&](int block) { update_block(block, lr, scale); });
}

}  // namespace triad
