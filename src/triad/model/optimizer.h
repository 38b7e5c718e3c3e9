#pragma once
// AdamW over the flat parameter buffer. Weight decay applies to the four linear weight matrices of each
// block only (TensorSpec::decay); biases, LayerNorm gains and the (tied) embeddings are not decayed.
//
// An instance owns the moments of a range [offset, offset + count) of the flat buffer and updates just
// those parameters: all of them in one process, one rank's part of a gradient bucket under ZeRO-1
// (parallel/).
//
// The moments are fp32 (8 bytes per parameter), or 8-bit (--optimizer-states 8bit: 2 bytes per parameter
// and 8 per block of 2048, model/quantized_state.h). In the 8-bit update each block is dequantized to fp32,
// takes the same AdamW step as fp32 moments would (the parameters move by the unrounded new moments), and
// is quantized again; so the first step from zero moments is bit-identical to fp32's. Under 8-bit the
// embeddings and tensors under 4096 values keep fp32 moments (keeps_fp32_state(), as bitsandbytes does).
//
// A step is begin_step() and then update_range() over every part of the owned range, in any order and
// pieces (the fused update, train/fused_update.h, takes each parameter block as its gradient is final):
// each value's arithmetic is the same as in one update() of the whole range.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "triad/kernels/adamw.h"
#include "triad/model/params.h"

namespace triad {

struct AdamWConfig {
  float beta1 = 0.9f, beta2 = 0.95f;
  float weight_decay = 0.1f;
};

enum class StatePrecision { kFp32, k8Bit };
// "fp32" or "8bit" (the --optimizer-states values); anything else is a usage error naming `flag`.
StatePrecision parse_state_precision(const std::string& name, const std::string& flag = "--optimizer-states");
const char* state_precision_name(StatePrecision precision);
// Bytes per parameter of the two moments, for memory predictions: 8, or 2 + 8 / 2048 (a tensor's last,
// shorter block aside).
double adamw_state_bytes_per_parameter(StatePrecision precision);

// One 8-bit moment of the owned range: a code per value, an absmax per block (AdamW::blocks()).
struct QuantizedMoment {
  std::vector<uint8_t> codes;
  std::vector<float> absmax;
};

class AdamW {
 public:
  explicit AdamW(const ParameterLayout& layout, StatePrecision precision = StatePrecision::kFp32)
      : AdamW(layout, 0, layout.count(), precision) {}
  // Under 8-bit, offset and offset + count must be block boundaries (quantization_boundaries()).
  AdamW(const ParameterLayout& layout, size_t offset, size_t count,
        StatePrecision precision = StatePrecision::kFp32);
  // One update of the owned range with learning rate `lr`; counts steps from 1. `params` and `grads` are
  // the whole flat buffers.
  void update(float* params, const float* grads, float lr, const AdamWConfig& config);
  void begin_step() { ++t_; }
  // The step counted by begin_step() for the owned parameters in [begin, end), which must start and end at
  // tensors (a parameter block does).
  void update_range(float* params, const float* grads, float lr, const AdamWConfig& config, size_t begin,
                    size_t end);
  // The tensors that start in [begin, end) of the flat buffer use `beta1` instead of config.beta1 and
  // lr * `lr_scale` (the buckets whose gradients travel top-K: parallel/distributed_optimizer.h).
  void override_range(size_t begin, size_t end, float beta1, float lr_scale) {
    overrides_.push_back({begin, end, beta1, lr_scale});
  }

  size_t offset() const { return offset_; }
  size_t count() const { return count_; }
  StatePrecision precision() const { return precision_; }

  // fp32 moments: of the owned range, or under 8-bit of its values that keep fp32 state, one after the
  // other in the order of the flat buffer (fp32_state_count() of them).
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  // 8-bit moments (empty under fp32): m on the signed map, v on the unsigned one, over blocks().
  QuantizedMoment& m8() { return m8_; }
  QuantizedMoment& v8() { return v8_; }
  // 8-bit: the block boundaries of the owned range, absolute offsets in the flat buffer (blocks + 1).
  const std::vector<size_t>& blocks() const { return blocks_; }

  int steps() const { return t_; }
  void set_steps(int t) { t_ = t; }
  size_t state_bytes() const;

 private:
  AdamWParams params_of(const TensorSpec& t, float lr, const AdamWConfig& config) const;
  void update_blocks(float* params, const float* grads, size_t b0, size_t b1,
                     const std::vector<AdamWParams>& per_tensor);

  const ParameterLayout& layout_;
  size_t offset_ = 0, count_ = 0;
  StatePrecision precision_;
  std::vector<float> m_, v_;  // fp32 moments (see m())
  QuantizedMoment m8_, v8_;   // of the owned range (8-bit; the codes of fp32-state tensors stay unused)
  std::vector<size_t> blocks_;
  std::vector<size_t> block_tensor_;   // 8-bit: the tensor (index in layout_.tensors()) of each block
  std::vector<char> block_quantized_;  // 8-bit: the block's tensor has 8-bit moments
  // The owned part [lo, hi) of each tensor, and where its fp32 moments start in m_ (-1: 8-bit moments).
  struct Segment {
    size_t lo, hi, tensor;
    ptrdiff_t fp32_at;
  };
  std::vector<Segment> segments_;
  struct Override {
    size_t begin, end;
    float beta1, lr_scale;
  };
  std::vector<Override> overrides_;
  int t_ = 0;
};

}  // namespace triad
