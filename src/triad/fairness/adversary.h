#pragma once
// The adversary of adversarial debiasing (paper §4.6; Zhang, Lemoine & Mitchell 2018): an MLP that tries to
// tell an example's identity group from what the classifier made of it,
//
//   input (N, in) -> Linear 128 -> ReLU -> Linear 64 -> ReLU -> Linear K -> softmax over K classes
//
// `in` is 1 (the classifier's probability: demographic parity), 3 ([s, s·y, s·(1−y)]: equalized odds, as
// AIF360) or the width of the pooled representation. The paper's adversary ends in one output for a binary
// attribute; an attribute here has K − 1 groups plus "none of them" (an example that mentions no group of
// it), so its last layer has K outputs — for one group and "none" that is the paper's binary adversary
// written as two logits.
//
//   loss = mean over labelled rows of −log softmax(logits)[target]   (target −1: the row is left out)

#include <cstddef>
#include <cstdint>
#include <vector>

namespace triad::fairness {

template <typename Real>
class Adversary {
 public:
  static constexpr int kHidden1 = 128, kHidden2 = 64;
  Adversary(int inputs, int classes, uint64_t seed);

  int inputs() const { return in_; }
  int classes() const { return K_; }
  std::vector<Real>& params() { return params_; }
  std::vector<Real>& grads() { return grads_; }

  // x (N, in), targets (N) in [0, K) or -1. Returns the mean loss over the rows with a target (0 when none),
  // keeping what backward needs.
  double forward(const Real* x, const int* targets, int N);
  // The last forward's probabilities (N, K).
  const std::vector<Real>& probabilities() const { return probs_; }
  // grads += d(loss)/d(params); dx (N, in) = d(loss)/dx (overwritten).
  void backward(Real* dx);

 private:
  int in_, K_;
  std::vector<Real> params_, grads_;
  size_t w1_, b1_, w2_, b2_, w3_, b3_;
  int N_ = 0, labelled_ = 0;
  std::vector<int> targets_;
  std::vector<Real> x_, h1_, a1_, h2_, a2_, probs_;
};

}  // namespace triad::fairness
