#pragma once
// A GPT small enough for gradient checks in double precision, and token ids for it.

#include <cstdint>
#include <vector>

#include "triad/model/config.h"

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

}  // namespace triad
