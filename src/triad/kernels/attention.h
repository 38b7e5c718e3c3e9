#pragma once
// Causal multi-head self-attention on packed q, k, v. C here is the attention width NH·HS
// (GptConfig::attention_width(): d_model unless the model has a --head-size).
//   qkv (B, T, 3C): per position q | k | v, each split into NH heads of HS = C / NH channels
//   att (B, NH, T, T): softmax(q k^T / sqrt(HS)) with the causal mask, zero above the diagonal
//   out (B, T, C): att · v, heads side by side
// Every product is a BLAS call per (batch, head) over row tiles of 64 queries; a tile only multiplies the
// keys it can see, so the masked upper triangle costs (almost) nothing. Threads split the (batch, head)
// pairs. The forward is two ops, so rematerialisation can recompute the probabilities alone:
//   attention_probs   att = softmax(q k^T / sqrt(HS)), causal
//   attention_values  out = att · v
// The backward needs qkv and att and accumulates into dqkv; given `datt` (B, NH, T, T), it also writes the
// gradient with respect to the probabilities there (zero above the diagonal), which explanations read.

namespace triad {

template <typename Real>
void attention_probs(Real* att, const Real* qkv, int B, int T, int C, int NH);

template <typename Real>
void attention_values(Real* out, const Real* att, const Real* qkv, int B, int T, int C, int NH);

// Both, for callers that want the output directly.
template <typename Real>
void attention_forward(Real* out, Real* att, const Real* qkv, int B, int T, int C, int NH) {
  attention_probs(att, qkv, B, T, C, NH);
  attention_values(out, att, qkv, B, T, C, NH);
}

template <typename Real>
void attention_backward(Real* dqkv, const Real* dout, const Real* qkv, const Real* att, int B, int T, int C,
                        int NH, Real* datt = nullptr);

// Decoding with a cache: the attention of one new position t over the keys and values of positions 0..t,
// each (T, C) row-major (the new one already written at row t). q: (C), the new position's queries; y: (C),
// heads side by side; scores: t + 1 floats of scratch.
void attention_decode_step(float* y, const float* q, const float* k_cache, const float* v_cache, int t, int C,
                           int NH, float* scores);

}  // namespace triad
