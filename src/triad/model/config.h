#pragma once
// The shape of a GPT: what a checkpoint must match to be loaded.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "triad/core/options.h"

namespace triad {

struct GptConfig {
  int layers = 4;     // L
  int d_model = 256;  // C
  int heads = 4;      // NH
  int seq_len = 128;  // maximum T (rows of the position embedding)
  int vocab = 8192;   // V
  // MLP hidden units F; 0 means 4·C. Structured pruning (compress/prune.h) narrows it.
  int mlp_width = 0;
  // Channels per attention head HS; 0 means C / NH. Head pruning (compress/prune.h) keeps HS and drops
  // heads, so the attention width A = NH·HS may differ from C: q, k, v are (A, C), the projection (C, A).
  int head_size = 0;

  int mlp() const { return mlp_width > 0 ? mlp_width : 4 * d_model; }
  int head_dim() const { return head_size > 0 ? head_size : d_model / heads; }
  int attention_width() const { return heads * head_dim(); }  // A

  // Usage error naming the offending field, e.g. d_model not divisible by heads.
  void validate() const;
  size_t num_parameters() const;
  // The same in double, which does not overflow for any flags: for checking a size before allocating it.
  double parameter_count() const;
  std::string describe() const;  // "L4 d256 h4 T128 V8192, 5.3M parameters"
  nlohmann::json to_json() const;
  // `where` names the source in errors (a file path).
  static GptConfig from_json(const nlohmann::json& j, const std::string& where);
  bool operator==(const GptConfig&) const = default;
  // --layers, --d-model, --heads, --seq-len; vocab is recorded, not a flag (it comes from the data).
  static const OptionTable<GptConfig>& options();
};

}  // namespace triad
