#pragma once
// Where every parameter lives in the one flat buffer, and its public name.
//
// Layout, block by block (a block is the unit of gradient buckets and sharding):
//   block 0        wte.weight (V, C), wpe.weight (T, C)
//   block 1 + l    h.l.ln_1.{weight,bias} (C), h.l.attn.qkv.weight (3C, C), .bias (3C),
//                  h.l.attn.proj.weight (C, C), .bias (C), h.l.ln_2.{weight,bias} (C),
//                  h.l.mlp.fc.weight (4C, C), .bias (4C), h.l.mlp.proj.weight (C, 4C), .bias (C)
//   block L + 1    ln_f.{weight,bias} (C)
// Linear weights are (out, in) as in nn.Linear. The LM head is wte (tied). Names are those of
// docs/checkpoints.md, so a PyTorch module with the same attribute names loads the safetensors directly.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "triad/model/config.h"

namespace triad {

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  size_t offset = 0;  // in elements, from the start of the flat buffer
  size_t count = 0;
  int block = 0;
  bool decay = false;  // weight decay applies: the four linear weights of each block, nothing else
};

struct ParamBlock {
  std::string name;  // "embed", "h.3", "ln_f"
  size_t offset = 0, count = 0;
};

class ParameterLayout {
 public:
  explicit ParameterLayout(const GptConfig& config);
  size_t count() const { return count_; }
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  const std::vector<ParamBlock>& blocks() const { return blocks_; }
  const TensorSpec* find(const std::string& name) const;

 private:
  std::vector<TensorSpec> tensors_;
  std::vector<ParamBlock> blocks_;
  size_t count_ = 0;
};

// Typed views into a flat buffer laid out as above.
template <typename Real>
struct BlockTensors {
  Real *ln1_w, *ln1_b, *qkv_w, *qkv_b, *proj_w, *proj_b, *ln2_w, *ln2_b, *fc_w, *fc_b, *fcproj_w, *fcproj_b;
};

template <typename Real>
struct GptTensors {
  Real* wte;
  Real* wpe;
  std::vector<BlockTensors<Real>> blocks;
  Real* lnf_w;
  Real* lnf_b;
};

template <typename Real>
GptTensors<Real> tensor_views(const ParameterLayout& layout, Real* base);

}  // namespace triad
