#pragma once
// Token + learned position embedding.
//   forward   out (B, T, C) = wte[tokens[b, t]] + wpe[t]
//   backward  dwte[tokens[b, t]] += dout[b, t];  dwpe[t] += dout[b, t]
// The backward splits the C channels across threads, so repeated tokens never race.

#include <cstdint>

namespace triad {

template <typename Real>
void encoder_forward(Real* out, const int32_t* tokens, const Real* wte, const Real* wpe, int B, int T, int C);

template <typename Real>
void encoder_backward(Real* dwte, Real* dwpe, const Real* dout, const int32_t* tokens, int B, int T, int C);

}  // namespace triad
