// Each op's backward against finite differences, in double precision, through the same templated code the
// float model runs.

#include <gtest/gtest.h>

#include "gradcheck.h"
#include "triad/core/parallel.h"
#include "triad/kernels/attention.h"
#include "triad/kernels/encoder.h"
#include "triad/kernels/gelu.h"
#include "triad/kernels/layernorm.h"
#include "triad/kernels/linear.h"
#include "triad/kernels/lm_head.h"

namespace triad {
namespace {

using testing::dot;
using testing::expect_gradient;
using testing::random_vector;
using Vec = std::vector<double>;

class Kernels : public ::testing::TestWithParam<int> {  // parameter: thread count
 protected:
  void SetUp() override { set_threads(GetParam()); }
  void TearDown() override { set_threads(1); }
};

TEST_P(Kernels, Linear) {
  const int M = 70, C = 9, OC = 13;  // M > 64 exercises the threaded row split
  Vec inp = random_vector(M * C, 1), w = random_vector(OC * C, 2), b = random_vector(OC, 3),
      r = random_vector(M * OC, 4);
  Vec out(M * OC);
  auto f = [&] {
    linear_forward(out.data(), inp.data(), w.data(), b.data(), M, C, OC);
    return dot(out, r);
  };
  Vec dinp(M * C, 0.0), dw(OC * C, 0.0), db(OC, 0.0);
  linear_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), M, C, OC);
  expect_gradient("dinp", inp, dinp, f);
  expect_gradient("dweight", w, dw, f);
  expect_gradient("dbias", b, db, f);
}

TEST_P(Kernels, LayerNorm) {
  const int N = 40, C = 12;
  Vec inp = random_vector(N * C, 5, 2.0), w = random_vector(C, 6), b = random_vector(C, 7),
      r = random_vector(N * C, 8);
  Vec out(N * C), mean(N), rstd(N);
  auto f = [&] {
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C);
    return dot(out, r);
  };
  f();
  Vec dinp(N * C, 0.0), dw(C, 0.0), db(C, 0.0);
  layernorm_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), mean.data(),
                     rstd.data(), N, C);
  expect_gradient("dinp", inp, dinp, f);
  expect_gradient("dweight", w, dw, f);
  expect_gradient("dbias", b, db, f);
}

TEST_P(Kernels, Gelu) {
  const size_t n = 300;
  Vec inp = random_vector(n, 9, 2.0), r = random_vector(n, 10), out(n);
  auto f = [&] {
    gelu_forward(out.data(), inp.data(), n);
    return dot(out, r);
  };
  Vec dinp(n, 0.0);
  gelu_backward(dinp.data(), inp.data(), r.data(), n);
  expect_gradient("dinp", inp, dinp, f);
  // and the value itself, against the formula
  f();
  EXPECT_NEAR(out[0],
              0.5 * inp[0] * (1 + std::tanh(0.7978845608028654 * (inp[0] + 0.044715 * std::pow(inp[0], 3)))),
              1e-15);
}

class Attention : public ::testing::TestWithParam<std::tuple<int, int>> {  // (T, threads)
 protected:
  void SetUp() override { set_threads(std::get<1>(GetParam())); }
  void TearDown() override { set_threads(1); }
};

TEST_P(Attention, MatchesFiniteDifferencesAndIsCausal) {
  const int B = 2, T = std::get<0>(GetParam()), C = 8, NH = 2;
  Vec qkv = random_vector(B * T * 3 * C, 11), r = random_vector(B * T * C, 12);
  Vec out(B * T * C), att(B * NH * T * T);
  auto f = [&] {
    attention_forward(out.data(), att.data(), qkv.data(), B, T, C, NH);
    return dot(out, r);
  };
  f();
  for (int bh = 0; bh < B * NH; ++bh) {
    for (int t = 0; t < T; ++t) {
      double sum = 0;
      for (int j = 0; j < T; ++j) {
        const double p = att[(static_cast<size_t>(bh) * T + t) * T + j];
        if (j > t) {
          ASSERT_EQ(p, 0.0) << "future position visible";
        }
        sum += p;
      }
      ASSERT_NEAR(sum, 1.0, 1e-12);
    }
  }
  Vec dqkv(qkv.size(), 0.0), datt(att.size(), -1.0);
  attention_backward(dqkv.data(), r.data(), qkv.data(), att.data(), B, T, C, NH, datt.data());
  expect_gradient("dqkv", qkv, dqkv, f, 1e-6, 400);
  // The gradient with respect to the probabilities themselves (explanations read it), against a scalar
  // dP[t, j] = Σ_c dY[t, c] · V[j, c] per head below the diagonal, zero above it.
  const int HS = C / NH;
  for (int b = 0; b < B; ++b) {
    for (int h = 0; h < NH; ++h) {
      for (int t = 0; t < T; ++t) {
        for (int j = 0; j < T; ++j) {
          double expected = 0;
          for (int c = 0; c < HS && j <= t; ++c) {
            expected += r[(size_t(b) * T + t) * C + h * HS + c] *
                        qkv[(size_t(b) * T + j) * 3 * C + 2 * C + h * HS + c];
          }
          ASSERT_NEAR(datt[((size_t(b) * NH + h) * T + t) * T + j], expected, 1e-12) << b << h << t << j;
        }
      }
    }
  }
}

// T = 70 and 130 span two and three 64-query tiles.
INSTANTIATE_TEST_SUITE_P(Kernels, Attention,
                         ::testing::Combine(::testing::Values(1, 5, 70, 130), ::testing::Values(1, 2)));

TEST_P(Kernels, Encoder) {
  const int B = 3, T = 5, C = 6, V = 7;
  std::vector<int32_t> tokens = {1, 2, 2, 6, 0, 3, 3, 3, 1, 5, 2, 2, 4, 6, 0};  // repeats on purpose
  Vec wte = random_vector(V * C, 13), wpe = random_vector(T * C, 14), r = random_vector(B * T * C, 15);
  Vec out(B * T * C);
  auto f = [&] {
    encoder_forward(out.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
    return dot(out, r);
  };
  Vec dwte(V * C, 0.0), dwpe(T * C, 0.0);
  encoder_backward(dwte.data(), dwpe.data(), r.data(), tokens.data(), B, T, C);
  expect_gradient("dwte", wte, dwte, f);
  expect_gradient("dwpe", wpe, dwpe, f);
}

class LmHead : public ::testing::TestWithParam<std::tuple<int, int>> {};  // (V, threads)

TEST_P(LmHead, LossAndGradientsWithAndWithoutKeptLogits) {
  set_threads(std::get<1>(GetParam()));
  const int N = 70, C = 6, V = std::get<0>(GetParam());  // V = 4500 spans three vocabulary slices
  Vec x = random_vector(N * C, 16, 1.0), wte = random_vector(static_cast<size_t>(V) * C, 17, 0.5);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = (n * 997) % V;
  Vec losses(N), lse(N), logits(static_cast<size_t>(N) * V),
      slice(static_cast<size_t>(N) * vocab_slice_width(V));
  auto f = [&] {
    lm_head_loss(losses.data(), lse.data(), static_cast<const double*>(nullptr), slice.data(), x.data(),
                 wte.data(), targets.data(), N, C, V);
    double s = 0;
    for (double l : losses) s += l;
    return 0.5 * s;
  };
  const double total = f();
  // The loss against a direct softmax over full logits.
  lm_head_logits(logits.data(), x.data(), wte.data(), N, C, V);
  double direct = 0;
  for (int n = 0; n < N; ++n) {
    const double* row = logits.data() + static_cast<size_t>(n) * V;
    double max = *std::max_element(row, row + V), sum = 0;
    for (int v = 0; v < V; ++v) sum += std::exp(row[v] - max);
    direct += 0.5 * (max + std::log(sum) - row[targets[n]]);
  }
  EXPECT_NEAR(total, direct, 1e-9);
  // Kept logits: the same losses to the bit.
  Vec kept_losses(N), kept_lse(N);
  lm_head_loss(kept_losses.data(), kept_lse.data(), logits.data(), slice.data(), x.data(), wte.data(),
               targets.data(), N, C, V);
  EXPECT_EQ(kept_losses, losses);
  // Gradients both ways, bit-identical, and against finite differences.
  Vec dx(x.size(), 0.0), dwte(wte.size(), 0.0), dx2(x.size(), 0.0), dwte2(wte.size(), 0.0);
  lm_head_backward(dx.data(), dwte.data(), static_cast<double*>(nullptr), slice.data(), x.data(), wte.data(),
                   targets.data(), lse.data(), 0.5, N, C, V);
  lm_head_backward(dx2.data(), dwte2.data(), logits.data(), slice.data(), x.data(), wte.data(),
                   targets.data(), lse.data(), 0.5, N, C, V);
  EXPECT_EQ(dx, dx2);
  EXPECT_EQ(dwte, dwte2);
  expect_gradient("dx", x, dx, f);
  expect_gradient("dwte", wte, dwte, f, 1e-6, 300);
  set_threads(1);
}

INSTANTIATE_TEST_SUITE_P(Kernels, LmHead,
                         ::testing::Combine(::testing::Values(17, 4500), ::testing::Values(1, 2)));

INSTANTIATE_TEST_SUITE_P(Threads, Kernels, ::testing::Values(1, 2));

}  // namespace
}  // namespace triad
