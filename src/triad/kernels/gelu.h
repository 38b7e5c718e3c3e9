#pragma once
// GELU, tanh approximation (as GPT-2 and nn.GELU(approximate="tanh")):
//   out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   backward: dinp += dout * gelu'(inp)

#include <cstddef>

namespace triad {

template <typename Real>
void gelu_forward(Real* out, const Real* inp, size_t n);

template <typename Real>
void gelu_backward(Real* dinp, const Real* inp, const Real* dout, size_t n);

}  // namespace triad
