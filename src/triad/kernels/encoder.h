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

// Vocabulary-parallel pieces (tensor parallelism: this rank holds wte rows [v0, v0 + V)):
//   lookup    out (N, C) = wte[tokens[n] - v0] for the tokens it holds, zeros for the others
//   backward  dwte[tokens[n] - v0] += dout[n] for those tokens
// and the positions, added after the tensor group summed the lookups: out[b, t] += wpe[t], dwpe[t] += dout[b,
// t].
template <typename Real>
void embedding_lookup(Real* out, const int32_t* tokens, const Real* wte, int v0, int V, int N, int C);
template <typename Real>
void embedding_backward(Real* dwte, const Real* dout, const int32_t* tokens, int v0, int V, int N, int C);
template <typename Real>
void position_add(Real* out, const Real* wpe, int B, int T, int C);
template <typename Real>
void position_backward(Real* dwpe, const Real* dout, int B, int T, int C);

}  // namespace triad
