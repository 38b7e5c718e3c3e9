#pragma once
// The LM head fused with softmax cross-entropy, computed in slices of kVocabSlice vocabulary entries so the
// (N, V) logits need never exist whole (the rematerialisation planner may drop them: the backward then
// recomputes each slice). Both ways run the same slices in the same order, so the loss and gradients are
// bit-identical whether the logits are kept or not.
//
//   forward   logits (N, V) = x (N, C) · wte^T; lse = logsumexp per row (online, slice by slice);
//             losses[n] = lse[n] - logits[n, targets[n]]
//   backward  dlogits = scale · (softmax - onehot);  dx (N, C) += dlogits · wte;  dwte (V, C) += dlogits^T ·
//   x

#include <cstdint>

namespace triad {

inline constexpr int kVocabSlice = 2048;
inline int vocab_slice_width(int V) {
  return V < kVocabSlice ? V : kVocabSlice;
}

// logits (N, V) = x · wte^T, slice by slice (the same products the loss computes when it has no logits).
template <typename Real>
void lm_head_logits(Real* logits, const Real* x, const Real* wte, int N, int C, int V);

// Per-position losses and logsumexp. `logits`: the kept (N, V) buffer from lm_head_logits, or nullptr to
// compute each slice into `slice` ((N, vocab_slice_width(V))). Returns the seconds spent computing logits.
template <typename Real>
double lm_head_loss(Real* losses, Real* lse, const Real* logits, Real* slice, const Real* x, const Real* wte,
                    const int32_t* targets, int N, int C, int V);

// `logits`: the kept buffer (overwritten with dlogits), or nullptr to recompute each slice into `slice`.
// Returns the seconds spent recomputing logits.
template <typename Real>
double lm_head_backward(Real* dx, Real* dwte, Real* logits, Real* slice, const Real* x, const Real* wte,
                        const int32_t* targets, const Real* lse, Real scale, int N, int C, int V);

}  // namespace triad
