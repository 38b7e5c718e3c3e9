#pragma once
// Where every parameter lives in the one flat buffer, and its public name.
//
// Layout, block by block (a block is the unit of gradient buckets and sharding):
//   block 0        wte.weight (V, C), wpe.weight (T, C)
//   block 1 + l    h.l.ln_1.{weight,bias} (C), h.l.attn.qkv.weight (3A, C), .bias (3A),
//                  h.l.attn.proj.weight (C, A), .bias (C), h.l.ln_2.{weight,bias} (C),
//                  h.l.mlp.fc.weight (F, C), .bias (F), h.l.mlp.proj.weight (C, F), .bias (C)
//                  (A = NH·HS, attention_width(), C unless --head-size; F = mlp(), 4C unless --mlp-width)
//   block L + 1    ln_f.{weight,bias} (C)
// Linear weights are (out, in) as in nn.Linear. The LM head is wte (tied). Names are those of
// docs/checkpoints.md, so a PyTorch module with the same attribute names loads the safetensors directly.
//
// A rank of a model-parallel job holds a shard (Tier I): its pipeline stage's blocks, and of each tensor its
// tensor-parallel slice, as Megatron-LM splits them:
//   wte                    rows (vocabulary) split: the embedding and the LM head are vocabulary-parallel
//   qkv.weight, .bias      rows split within each of q, k, v: this rank's heads (column-parallel)
//   fc.weight, .bias       rows split (column-parallel)
//   attn.proj.weight,      columns split (row-parallel: partial outputs summed over the tensor group)
//   mlp.proj.weight
//   LayerNorms, wpe, the two projection biases: whole on every rank (replicated)
// The last stage holds its own copy of wte for the LM head when it is not also the first. Each tensor keeps
// its whole shape, so a checkpoint stores whole tensors by name and loads at any layout.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "triad/model/config.h"

namespace triad {

// Which part of the model a rank holds: blocks [first_block, first_block + blocks) of its pipeline stage,
// the embedding (first stage) and the head (last stage), and slice `tensor_rank` of `tensor_size` of each
// split tensor.
struct ModelShard {
  int first_block = 0, blocks = 0;
  bool embedding = true, head = true;
  int tensor_rank = 0, tensor_size = 1;
  static ModelShard whole(const GptConfig& config) { return {.blocks = config.layers}; }
  bool is_whole(const GptConfig& config) const {
    return blocks == config.layers && embedding && head && tensor_size == 1;
  }
  // Usage errors for a tensor split that does not divide heads, the MLP and the vocabulary.
  void validate(const GptConfig& config) const;
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;       // this rank's slice
  std::vector<int64_t> full_shape;  // the whole tensor
  // The slice: dimension `split_dim` (-1: whole) viewed as `split_parts` equal parts (3 for q, k, v), of
  // each of which this rank holds piece `split_rank` of `split_size`.
  int split_dim = -1, split_parts = 1, split_rank = 0, split_size = 1;
  // Whole on every rank of the tensor group (the gradient norm counts it once), or the last stage's copy of
  // the tied embedding (not counted, not saved: the first stage's is).
  bool replicated = false, tied_copy = false;
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
  explicit ParameterLayout(const GptConfig& config) : ParameterLayout(config, ModelShard::whole(config)) {}
  ParameterLayout(const GptConfig& config, const ModelShard& shard);
  size_t count() const { return count_; }
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  const std::vector<ParamBlock>& blocks() const { return blocks_; }
  const TensorSpec* find(const std::string& name) const;
  const ModelShard& shard() const { return shard_; }

 private:
  ModelShard shard_;
  std::vector<TensorSpec> tensors_;
  std::vector<ParamBlock> blocks_;
  size_t count_ = 0;
};

// Between a whole tensor and a rank's slice of it (the same buffer when the tensor is not split).
template <typename Real>
void copy_slice(const TensorSpec& t, const Real* whole, Real* slice);
template <typename Real>
void copy_from_slice(const TensorSpec& t, const Real* slice, Real* whole);

// Typed views into a flat buffer laid out as above; tensors the shard does not hold are nullptr, and
// blocks[i] is the shard's i-th block (global block first_block + i).
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
