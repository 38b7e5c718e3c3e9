#pragma once
// Autoregressive sampling with a KV cache: each new position runs the blocks on one token, attending to the
// keys and values cached for the earlier positions, instead of re-running the whole prefix.

#include <cstdint>
#include <vector>

#include "triad/core/rng.h"
#include "triad/model/gpt.h"

namespace triad {

// The cache and the one-position buffers of decoding (KvDecoder here, compress/int8_model.h's Int8Decoder).
class DecodeState {
 public:
  int position() const { return pos_; }

 protected:
  explicit DecodeState(const GptConfig& config);
  // The next position, counted; a usage error once the model's context is full.
  int next_position();

  std::vector<float> k_cache_, v_cache_;  // per layer (seq_len, C)
  std::vector<float> x_, ln_, qkv_, y_, fc_, gelu_, tmp_, scores_, logits_;

 private:
  int seq_len_, pos_ = 0;
};

class KvDecoder : public DecodeState {
 public:
  explicit KvDecoder(const Gpt<float>& model);
  // Feeds the token at the next position and returns the logits (V) for the position after it.
  const std::vector<float>& step(int32_t token);

 private:
  const Gpt<float>& model_;
  GptTensors<const float> w_;
};

struct SampleOptions {
  int max_tokens = 64;
  float temperature = 0.8f;  // 0: greedy
  int top_k = 40;            // 0: the whole vocabulary
  uint64_t seed = 1;
};

// Continues `prompt` (non-empty) until EOS, max_tokens or the model's context is full; returns the new
// tokens only.
std::vector<int32_t> generate(const Gpt<float>& model, const std::vector<int32_t>& prompt,
                              const SampleOptions& options, int32_t eos_id);

// Draws a token from logits with temperature and top-k.
int32_t sample_token(const std::vector<float>& logits, const SampleOptions& options, Rng& rng);

}  // namespace triad
