#pragma once
// AdamW over the flat parameter buffer. Weight decay applies to the four linear weight matrices of each
// block only (TensorSpec::decay); biases, LayerNorm gains and the (tied) embeddings are not decayed.
//
// Under ZeRO-1 each rank holds the moments of its shard only, [offset, offset + count) of the flat
// buffer, and updates just those parameters.

#include <vector>

#include "triad/model/params.h"
#include "triad/train/options.h"

namespace triad {

class AdamW {
 public:
  explicit AdamW(const ParameterLayout& layout) : AdamW(layout, 0, layout.count()) {}
  AdamW(const ParameterLayout& layout, size_t offset, size_t count);
  // One update of the owned range with learning rate `lr`; counts steps from 1. `params` and `grads` are
  // the whole flat buffers.
  void update(float* params, const float* grads, float lr, const TrainOptions& options);
  // The tensors that start in [begin, end) of the flat buffer use `beta1` instead of options.beta1 and
  // lr * `lr_scale` (the trainer's top-K buckets: TrainOptions::topk_beta1, topk_lr_scale).
  void override_range(size_t begin, size_t end, float beta1, float lr_scale) {
    overrides_.push_back({begin, end, beta1, lr_scale});
  }

  size_t offset() const { return offset_; }
  size_t count() const { return m_.size(); }

  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  int steps() const { return t_; }
  void set_steps(int t) { t_ = t; }
  size_t state_bytes() const { return (m_.size() + v_.size()) * sizeof(float); }

 private:
  const ParameterLayout& layout_;
  size_t offset_ = 0;
  std::vector<float> m_, v_;  // of the owned range
  struct Override {
    size_t begin, end;
    float beta1, lr_scale;
  };
  std::vector<Override> overrides_;
  int t_ = 0;
};

// Σ g², summed per thread chunk and then across chunks in order: deterministic for a thread count.
double sum_of_squares(const float* grads, size_t n);
// sqrt(sum_of_squares).
double global_norm(const float* grads, size_t n);
void scale_in_place(float* data, size_t n, float factor);

}  // namespace triad
