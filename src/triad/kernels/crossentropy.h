#pragma once
// Softmax + cross-entropy, fused: the probabilities are never stored.
//   forward   losses[n] = logsumexp(logits[n]) - logits[n, targets[n]];  saves lse (N)
//   backward  dlogits[n, v] = scale * (exp(logits[n, v] - lse[n]) - [v == targets[n]])
// The backward writes (does not accumulate) and may run in place: dlogits == logits turns the (N, V) logits
// buffer, the largest activation of a small model, into its own gradient.

#include <cstdint>

namespace triad {

template <typename Real>
void crossentropy_forward(Real* losses, Real* lse, const Real* logits, const int32_t* targets, int N, int V);

template <typename Real>
void crossentropy_backward(Real* dlogits, const Real* logits, const Real* lse, const int32_t* targets,
                           Real scale, int N, int V);

}  // namespace triad
