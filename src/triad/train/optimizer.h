#pragma once
// AdamW over the flat parameter buffer. Weight decay applies to the four linear weight matrices of each
// block only (TensorSpec::decay); biases, LayerNorm gains and the (tied) embeddings are not decayed.

#include <vector>

#include "triad/model/params.h"
#include "triad/train/options.h"

namespace triad {

class AdamW {
 public:
  explicit AdamW(const ParameterLayout& layout);
  // One update with learning rate `lr`; counts steps from 1.
  void update(float* params, const float* grads, float lr, const TrainOptions& options);

  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  int steps() const { return t_; }
  void set_steps(int t) { t_ = t; }
  size_t state_bytes() const { return (m_.size() + v_.size()) * sizeof(float); }

 private:
  const ParameterLayout& layout_;
  std::vector<float> m_, v_;
  int t_ = 0;
};

// sqrt(Σ g²), summed per thread chunk and then across chunks in order: deterministic for a thread count.
double global_norm(const float* grads, size_t n);
void scale_in_place(float* data, size_t n, float factor);

}  // namespace triad
