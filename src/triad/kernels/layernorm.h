#pragma once
// LayerNorm over the last dimension, eps = 1e-5 (PyTorch's default).
//   forward   out (N, C) = (inp - mean) * rstd * weight + bias; saves mean (N), rstd (N)
//   backward  dinp += ...; dweight += Σ_rows dout * norm; dbias += Σ_rows dout
// Row-parallel; the weight gradients are summed per thread and then across threads in a fixed order.

namespace triad {

template <typename Real>
void layernorm_forward(Real* out, Real* mean, Real* rstd, const Real* inp, const Real* weight,
                       const Real* bias, int N, int C);

template <typename Real>
void layernorm_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                        const Real* weight, const Real* mean, const Real* rstd, int N, int C);

}  // namespace triad
