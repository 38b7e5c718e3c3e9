#pragma once
// AdamW over the flat parameter buffer. Weight decay applies to the four linear weight matrices of each
// block only (TensorSpec::decay); biases, LayerNorm gains and the (tied) embeddings are not decayed.
//
// An instance owns the moments of a range [offset, offset + count) of the flat buffer and updates just
// those parameters: all of them in one process, one rank's shard under ZeRO-1 (parallel/).

#include <cstddef>
#include <vector>

#include "triad/model/params.h"

namespace triad {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f;
  float weight_decay = 0.1f;
};

class AdamW {
 public:
  explicit AdamW(const ParameterLayout& layout) : AdamW(layout, 0, layout.count()) {}
  AdamW(const ParameterLayout& layout, size_t offset, size_t count);
  // One update of the owned range with learning rate `lr`; counts steps from 1. `params` and `grads` are
  // the whole flat buffers.
  void update(float* params, const float* grads, float lr, const AdamWConfig& config);
  // The tensors that start in [begin, end) of the flat buffer use `beta1` instead of config.beta1 and
  // lr * `lr_scale` (the buckets whose gradients travel top-K: parallel/distributed_optimizer.h).
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

}  // namespace triad
