#include "triad/model/config.h"

#include <fmt/format.h>

#include "triad/core/error.h"

namespace triad {

void GptConfig::validate() const {
  if (layers < 1) fail_usage("--layers must be at least 1, got {}", layers);
  if (d_model < 1 || heads < 1) fail_usage("--d-model and --heads must be positive");
  if (d_model % heads != 0) fail_usage("--d-model {} is not divisible by --heads {}", d_model, heads);
  if (seq_len < 1) fail_usage("--seq-len must be positive, got {}", seq_len);
  if (vocab < 2) fail_usage("the vocabulary must have at least 2 tokens, got {}", vocab);
}

size_t GptConfig::num_parameters() const {
  const size_t C = static_cast<size_t>(d_model);
  const size_t per_block = 2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C;
  return static_cast<size_t>(vocab) * C + static_cast<size_t>(seq_len) * C + layers * per_block + 2 * C;
}

std::string GptConfig::describe() const {
  return fmt::format("L{} d{} h{} T{} V{}, {:.2f}M parameters", layers, d_model, heads, seq_len, vocab,
                     num_parameters() / 1e6);
}

nlohmann::json GptConfig::to_json() const {
  return {{"layers", layers}, {"d_model", d_model}, {"heads", heads}, {"seq_len", seq_len}, {"vocab", vocab}};
}

GptConfig GptConfig::from_json(const nlohmann::json& j, const std::string& where) {
  GptConfig c;
  auto get = [&](const char* key, int* out) {
    if (!j.contains(key) || !j[key].is_number_integer())
      fail("{}: model config lacks integer \"{}\"", where, key);
    *out = j[key].get<int>();
  };
  get("layers", &c.layers);
  get("d_model", &c.d_model);
  get("heads", &c.heads);
  get("seq_len", &c.seq_len);
  get("vocab", &c.vocab);
  return c;
}

}  // namespace triad
