#pragma once
// Checks shared by the explanation tests.

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "triad/core/rng.h"
#include "triad/explain/probe.h"

namespace triad::testing {

// A probe's gradient of its score with respect to the token embeddings, along three random directions,
// against central differences of the score; and the embedded forward against the token forward.
inline void expect_score_gradient(explain::Probe& probe, const std::vector<int32_t>& tokens) {
  const std::vector<float> e = probe.token_embeddings(tokens);
  std::vector<double> z;
  std::vector<float> g;
  probe.logits_and_gradients(tokens, e, 1, &z, &g);
  EXPECT_NEAR(z[0], probe.logits({tokens})[0], 1e-4) << "the embedded forward is the token forward";
  Rng rng(3);
  for (int trial = 0; trial < 3; ++trial) {
    std::vector<float> d(e.size()), both(2 * e.size());
    double analytic = 0;
    for (size_t i = 0; i < e.size(); ++i) {
      d[i] = static_cast<float>(rng.normal());
      analytic += g[i] * d[i];
    }
    const float eps = 1e-3f;
    for (size_t i = 0; i < e.size(); ++i) {
      both[i] = e[i] + eps * d[i];
      both[e.size() + i] = e[i] - eps * d[i];
    }
    std::vector<double> zz;
    std::vector<float> unused;
    probe.logits_and_gradients(tokens, both, 2, &zz, &unused);
    const double numeric = (zz[0] - zz[1]) / (2 * eps);
    EXPECT_NEAR(analytic, numeric, 0.02 * std::abs(numeric) + 1e-3) << "trial " << trial;
  }
}

}  // namespace triad::testing
