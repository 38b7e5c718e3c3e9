#pragma once
// A GPT small enough for gradient checks in double precision, and token ids for it.

#include <cstdint>
#include <vector>

#include "gradcheck.h"
#include "triad/model/config.h"
#include "triad/model/gpt.h"

namespace triad {

inline GptConfig tiny() {
  return {.layers = 2, .d_model = 8, .heads = 2, .seq_len = 6, .vocab = 11};
}

// `n` ids below `vocab`, a different sequence per `salt`.
inline std::vector<int32_t> tokens(int n, int vocab, int salt) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + salt * 3 + i * i) % vocab;
  return t;
}

// The loss gradient of `model` (weights from seed 3, scaled ×10 so every path carries signal) on B x T
// tokens() against central differences at `checks` parameters; `on_block_done` sees the backward's blocks.
inline void expect_loss_gradient(const GptConfig& c, int B, int T, size_t checks,
                                 const Gpt<double>::BlockDone& on_block_done = nullptr) {
  Gpt<double> model(c);
  model.init_weights(3);
  for (size_t i = 0; i < model.num_params(); ++i) model.params()[i] *= 10;
  auto inputs = tokens(B * T, c.vocab, 1), targets = tokens(B * T, c.vocab, 2);
  model.zero_grads();
  model.forward(inputs.data(), targets.data(), B, T);
  model.backward(1.0 / (B * T), on_block_done);
  std::vector<double> analytic(model.grads(), model.grads() + model.num_params());
  std::vector<double> params(model.params(), model.params() + model.num_params());
  auto f = [&] {
    std::copy(params.begin(), params.end(), model.params());
    double loss = model.forward(inputs.data(), targets.data(), B, T);
    model.release_activations();
    return loss;
  };
  testing::expect_gradient("params", params, analytic, f, 1e-5, checks);
}

}  // namespace triad
