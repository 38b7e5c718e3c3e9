#pragma once
// Int8 linear layers for post-training quantized inference.
//
// Weights: symmetric, per output channel. Row n of a (N, K) weight (nn.Linear's (out, in)) is stored as
// q[n][k] = round(w[n][k] / s[n]) in [-127, 127] with s[n] = max_k |w[n][k]| / 127, so each row keeps its
// own range and small rows lose no more precision than large ones.
//
// Activations: quantized dynamically, per row, the same way (s[m] = max_k |x[m][k]| / 127), on every call.
// The product of the int8 matrices is computed by oneDNN's int8 matmul (s8 x s8 -> s32, exact), then
// rescaled: y[m][n] = acc[m][n] · sx[m] · sw[n] (+ bias[n]).
//
// Error bound (tests/compress_quantize_test.cc): with x = sx·qx + ex, |ex| <= sx/2 and w = sw·qw + ew,
// |ew| <= sw/2, the exact product minus the quantized one is Σ_k (x_k ew_k + ex_k w_k − ex_k ew_k), so
//   |y − ŷ| <= (sw/2)·Σ|x_k| + (sx/2)·Σ|w_k| + K·sx·sw/4     (int8_error_bound)
// plus float rounding of the rescale (relative 2^-23 per operation).

#include <cstdint>
#include <memory>
#include <vector>

namespace triad {

// Symmetric per-row quantization of a (rows, cols) matrix: q (rows·cols), scale (rows). A row of zeros
// gets scale 0 and all-zero q.
void quantize_rows(const float* x, int rows, int cols, int8_t* q, float* scale);

// The worst-case |exact − quantized| of one output, from the two rows' values and scales (see above).
double int8_error_bound(const float* x, float x_scale, const float* w, float w_scale, int K);

class Int8Linear {
 public:
  // weight (out_features, in_features), row-major; quantized here and kept only as int8 + scales.
  Int8Linear(const float* weight, int out_features, int in_features);
  ~Int8Linear();
  Int8Linear(Int8Linear&&) noexcept;
  Int8Linear& operator=(Int8Linear&&) noexcept;

  // out (M, N) = x (M, K) · Wᵀ (+ bias (N), if given). Not thread-safe: one call at a time per layer.
  void forward(float* out, const float* x, const float* bias, int M);

  int out_features() const { return out_; }
  int in_features() const { return in_; }
  const std::vector<int8_t>& weights() const { return q_; }  // (N, K)
  const std::vector<float>& scales() const { return scale_; }
  // Row n dequantized: scale[n] · q[n][k] (the embedding lookup of a tied LM head).
  void dequantize_row(int n, float* out) const;
  size_t bytes() const { return q_.size() + scale_.size() * sizeof(float); }

 private:
  struct Kernel;  // oneDNN objects, per row count M
  Kernel& kernel(int M);
  int out_ = 0, in_ = 0;
  std::vector<int8_t> q_;
  std::vector<float> scale_;
  std::vector<std::unique_ptr<Kernel>> kernels_;
  std::vector<int8_t> xq_;  // per call
  std::vector<float> xs_;
  std::vector<int32_t> acc_;
};

}  // namespace triad
