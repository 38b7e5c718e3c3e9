#include "triad/fairness/adversary.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "triad/core/rng.h"
#include "triad/kernels/linear.h"

namespace triad::fairness {

template <typename Real>
Adversary<Real>::Adversary(int inputs, int classes, uint64_t seed) : in_(inputs), K_(classes) {
  const int H1 = kHidden1, H2 = kHidden2;
  size_t at = 0;
  auto take = [&](size_t n) { return std::exchange(at, at + n); };
  w1_ = take(static_cast<size_t>(H1) * in_);
  b1_ = take(H1);
  w2_ = take(static_cast<size_t>(H2) * H1);
  b2_ = take(H2);
  w3_ = take(static_cast<size_t>(K_) * H2);
  b3_ = take(K_);
  params_.resize(at);
  grads_.assign(at, Real(0));
  // PyTorch's nn.Linear initialisation: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
  Rng rng(seed);
  auto fill = [&](size_t w, size_t b, int out, int fan_in) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (size_t i = w; i < b + static_cast<size_t>(out); ++i) {
      params_[i] = static_cast<Real>((2 * rng.uniform() - 1) * bound);
    }
  };
  fill(w1_, b1_, H1, in_);
  fill(w2_, b2_, H2, H1);
  fill(w3_, b3_, K_, H2);
}

template <typename Real>
double Adversary<Real>::forward(const Real* x, const int* targets, int N) {
  const int H1 = kHidden1, H2 = kHidden2, K = K_;
  N_ = N;
  x_.assign(x, x + static_cast<size_t>(N) * in_);
  targets_.assign(targets, targets + N);
  h1_.resize(static_cast<size_t>(N) * H1);
  h2_.resize(static_cast<size_t>(N) * H2);
  probs_.resize(static_cast<size_t>(N) * K);
  const Real* p = params_.data();
  linear_forward(h1_.data(), x_.data(), p + w1_, p + b1_, N, in_, H1);
  a1_ = h1_;
  for (Real& v : a1_) v = std::max(v, Real(0));
  linear_forward(h2_.data(), a1_.data(), p + w2_, p + b2_, N, H1, H2);
  a2_ = h2_;
  for (Real& v : a2_) v = std::max(v, Real(0));
  linear_forward(probs_.data(), a2_.data(), p + w3_, p + b3_, N, H2, K);
  double loss = 0;
  labelled_ = 0;
  for (int i = 0; i < N; ++i) {
    Real* row = probs_.data() + static_cast<size_t>(i) * K;
    const Real top = *std::max_element(row, row + K);
    Real sum = 0;
    for (int k = 0; k < K; ++k) sum += row[k] = std::exp(row[k] - top);
    for (int k = 0; k < K; ++k) row[k] /= sum;
    if (targets[i] >= 0) {
      loss -= std::log(std::max(static_cast<double>(row[targets[i]]), 1e-300));
      ++labelled_;
    }
  }
  return labelled_ > 0 ? loss / labelled_ : 0.0;
}

template <typename Real>
void Adversary<Real>::backward(Real* dx) {
  const int N = N_, H1 = kHidden1, H2 = kHidden2, K = K_;
  std::vector<Real> dlogits(static_cast<size_t>(N) * K, Real(0));
  if (labelled_ > 0) {
    const Real scale = Real(1) / static_cast<Real>(labelled_);
    for (int i = 0; i < N; ++i) {
      if (targets_[i] < 0) continue;
      for (int k = 0; k < K; ++k) {
        const size_t j = static_cast<size_t>(i) * K + k;
        dlogits[j] = (probs_[j] - (k == targets_[i] ? Real(1) : Real(0))) * scale;
      }
    }
  }
  const Real* p = params_.data();
  Real* g = grads_.data();
  std::vector<Real> da2(static_cast<size_t>(N) * H2, Real(0)), da1(static_cast<size_t>(N) * H1, Real(0));
  linear_backward(da2.data(), g + w3_, g + b3_, dlogits.data(), a2_.data(), p + w3_, N, H2, K);
  for (size_t j = 0; j < da2.size(); ++j) da2[j] = h2_[j] > 0 ? da2[j] : Real(0);
  linear_backward(da1.data(), g + w2_, g + b2_, da2.data(), a1_.data(), p + w2_, N, H1, H2);
  for (size_t j = 0; j < da1.size(); ++j) da1[j] = h1_[j] > 0 ? da1[j] : Real(0);
  std::fill(dx, dx + static_cast<size_t>(N) * in_, Real(0));
  linear_backward(dx, g + w1_, g + b1_, da1.data(), x_.data(), p + w1_, N, in_, H1);
}

template class Adversary<float>;
template class Adversary<double>;

}  // namespace triad::fairness
