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

// Knowledge distillation (Hinton et al. 2015): the loss at each position mixes the hard targets'
// cross-entropy with the KL divergence from a teacher's distribution, both at temperature T:
//
//   loss = (1 - A) CE + A T^2 KL(p_t^T || p_s^T),   p^T = softmax(logits / T)
//   KL   = sum_v p_t^T (z_t - z_s) / T - lse_t^T + lse_s^T      (lse^T: logsumexp of logits / T)
//   dloss/dz_s = (1 - A)(softmax(z_s) - onehot) + A T (p_s^T - p_t^T)
//
// The teacher's logits z_t (N, V) = x (N, C) . wte^T are computed slice by slice as the student's are, into
// `slice` ((N, vocab_slice_width(V))); neither model's (N, V) logits need exist whole. The forward is one
// pass over the slices (the teacher-weighted sum rescaled as its running maximum moves), the backward a
// second. At A = 0 both are bit-identical to lm_head_loss and lm_head_backward.
template <typename Real>
struct SoftTargets {
  const Real* x = nullptr;    // the teacher's final hidden state (N, C), after its LN_f
  const Real* wte = nullptr;  // its tied token embedding (V, C)
  int C = 0;
  Real temperature = 2, weight = 0.5;  // T, A
  Real* slice = nullptr;               // scratch for the teacher's logits, (N, vocab_slice_width(V))
};

// As lm_head_loss, with losses[n] the mixed loss, and `stats` (3, N): lse_s^T, lse_t^T and the hard CE.
template <typename Real>
double lm_head_distill_loss(Real* losses, Real* lse, Real* stats, const Real* logits, Real* slice,
                            const Real* x, const Real* wte, const int32_t* targets,
                            const SoftTargets<Real>& teacher, int N, int C, int V);

// As lm_head_backward, from lm_head_distill_loss's `lse` and `stats`.
template <typename Real>
double lm_head_distill_backward(Real* dx, Real* dwte, Real* logits, Real* slice, const Real* x,
                                const Real* wte, const int32_t* targets, const Real* lse, const Real* stats,
                                const SoftTargets<Real>& teacher, Real scale, int N, int C, int V);

}  // namespace triad
