#include "triad/model/config.h"

#include <fmt/format.h>

#include "triad/core/error.h"

namespace triad {

void GptConfig::validate() const {
  if (layers < 1) fail_usage("--layers must be at least 1, got {}", layers);
  if (d_model < 1 || heads < 1) fail_usage("--d-model and --heads must be positive");
  if (head_size < 0) fail_usage("--head-size must be non-negative, got {}", head_size);
  if (head_size == 0 && d_model % heads != 0)
    fail_usage("--d-model {} is not divisible by --heads {} (or give --head-size)", d_model, heads);
  if (seq_len < 1) fail_usage("--seq-len must be positive, got {}", seq_len);
  if (mlp_width < 0) fail_usage("--mlp-width must be non-negative, got {}", mlp_width);
  if (vocab < 2) fail_usage("the vocabulary must have at least 2 tokens, got {}", vocab);
}

namespace {

template <typename Number>
Number parameters_of(const GptConfig& c) {
  const Number C = static_cast<Number>(c.d_model);
  const Number F = static_cast<Number>(c.mlp());
  const Number A = static_cast<Number>(c.attention_width());
  const Number per_block = 2 * C + 3 * A * C + 3 * A + C * A + C + 2 * C + F * C + F + C * F + C;
  return static_cast<Number>(c.vocab) * C + static_cast<Number>(c.seq_len) * C +
         static_cast<Number>(c.layers) * per_block + 2 * C;
}

}  // namespace

size_t GptConfig::num_parameters() const {
  return parameters_of<size_t>(*this);
}

double GptConfig::parameter_count() const {
  return parameters_of<double>(*this);
}

std::string GptConfig::describe() const {
  const std::string head = head_size > 0 ? fmt::format(" hs{}", head_size) : "";
  const std::string width = mlp() == 4 * d_model ? "" : fmt::format(" mlp{}", mlp());
  return fmt::format("L{} d{} h{}{}{} T{} V{}, {:.2f}M parameters", layers, d_model, heads, head, width,
                     seq_len, vocab, num_parameters() / 1e6);
}

const OptionTable<GptConfig>& GptConfig::options() {
  static const OptionTable<GptConfig> table = [] {
    OptionTable<GptConfig> t;
    t.add("layers", &GptConfig::layers, "Transformer blocks L").check(Check::kPositive);
    t.add("d-model", &GptConfig::d_model, "Model width C").check(Check::kPositive);
    t.add("heads", &GptConfig::heads, "Attention heads (must divide --d-model unless --head-size is given)")
        .check(Check::kPositive);
    t.add("head-size", &GptConfig::head_size, "Channels per attention head (0: --d-model / --heads)")
        .check(Check::kNonNegative);
    t.add("seq-len", &GptConfig::seq_len, "Context length T in tokens").check(Check::kPositive);
    t.add("mlp-width", &GptConfig::mlp_width, "MLP hidden units (0: 4 x --d-model)")
        .check(Check::kNonNegative);
    t.add("vocab", &GptConfig::vocab, "Vocabulary size V (from the data's tokenizer)").not_a_flag();
    return t;
  }();
  return table;
}

nlohmann::json GptConfig::to_json() const {
  nlohmann::json j = options_to_json(options(), *this);
  if (head_size == 0) j.erase("head_size");  // today's shape reads as before head pruning existed
  return j;
}

GptConfig GptConfig::from_json(const nlohmann::json& j, const std::string& where) {
  GptConfig c;
  for (const Option<GptConfig>& o : options().all()) {  // every field: a checkpoint's model is exact
    if (o.key() == "mlp_width" && !j.contains(o.key())) continue;  // before pruning existed: 4·C
    if (o.key() == "head_size" && !j.contains(o.key())) continue;  // C / NH
    if (!j.contains(o.key()) || !j[o.key()].is_number_integer())
      fail("{}: model config lacks integer \"{}\"", where, o.key());
  }
  return options_from_json(options(), j, where, c);
}

}  // namespace triad
