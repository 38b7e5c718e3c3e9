#pragma once
// A GPT for inference with int8 weights (compress/int8_linear.h): every linear layer — q/k/v, the attention
// and MLP projections, the MLP's first layer, and the tied LM head / token embedding — is kept as int8 with
// per-output-channel scales; LayerNorms, biases and position embeddings (under 1 % of the parameters) stay
// float, as do attention, softmax and GELU. The float model is not needed after construction.
//
//   loss(inputs, targets, B, T)   the mean next-token loss, as Gpt::forward computes it (evaluation)
//   Int8Decoder                   KV-cache decoding, as model/generate.h's KvDecoder (sampling)

#include <cstdint>
#include <vector>

#include "triad/compress/int8_linear.h"
#include "triad/model/generate.h"
#include "triad/model/gpt.h"

namespace triad {

class Int8Gpt {
 public:
  // A whole (not model-parallel) float model.
  explicit Int8Gpt(const Gpt<float>& model);

  const GptConfig& config() const { return config_; }
  // inputs, targets: (B, T) token ids. Returns the mean loss over the B·T positions.
  double loss(const int32_t* inputs, const int32_t* targets, int B, int T);
  // Bytes of weights held (int8 values, their scales, and the float tensors).
  size_t weight_bytes() const;
  // Seconds spent in loss() so far, by part: the blocks' linear layers (activation quantization, int8
  // product, rescale), the LM head's, the loss over the logits, and the rest (embedding, LayerNorms,
  // attention, GELU, residuals).
  struct Seconds {
    double block_linears = 0, head = 0, loss = 0, rest = 0;
  };
  const Seconds& seconds() const { return seconds_; }

 private:
  friend class Int8Decoder;
  struct Layer {
    std::vector<float> ln1_w, ln1_b, qkv_b, proj_b, ln2_w, ln2_b, fc_b, fcproj_b;
    Int8Linear qkv, proj, fc, fcproj;
  };
  void embed(float* out, int32_t token, int position) const;

  GptConfig config_;
  std::vector<float> wpe_, lnf_w_, lnf_b_;
  std::vector<Layer> layers_;
  Int8Linear head_;  // wte (V, C): the LM head, and the embedding table (row by row, dequantized)
  std::vector<float> x_, ln_, qkv_, att_, y_, fc_, gelu_, tmp_, logits_, losses_;
  Seconds seconds_;
};

class Int8Decoder : public DecodeState {
 public:
  explicit Int8Decoder(Int8Gpt& model) : DecodeState(model.config()), m_(model) {}
  // Feeds the token at the next position and returns the logits (V) for the position after it.
  const std::vector<float>& step(int32_t token);

 private:
  Int8Gpt& m_;
};

// model/generate.h's generate() on the int8 model: the same sampling, token for token.
std::vector<int32_t> int8_generate(Int8Gpt& model, const std::vector<int32_t>& prompt,
                                   const SampleOptions& options, int32_t eos_id);

}  // namespace triad
