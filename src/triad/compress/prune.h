#pragma once
// Pruning a trained GPT.
//
// Structured: MLP units and attention heads; the pruned model is smaller and faster.
//
// MLP units. Unit j of a block's MLP is row j of mlp.fc (weight and bias) and column j of mlp.proj;
// removing it removes 2C + 1 parameters and the matching work. Its importance is the size of what it can
// add to the residual stream, ‖fc.weight[j]‖₂ · ‖proj.weight[:, j]‖₂ (the GELU is 1-Lipschitz-ish around 0).
//
// Attention heads. Head h is rows h·HS .. (h+1)·HS − 1 of each of q, k and v in attn.qkv (weight and bias)
// and the same columns of attn.proj; removing it removes 4·HS·C + 3·HS parameters. Its importance is the
// same product, in to out, over the path that writes to the residual stream: ‖[v.weight_h | v.bias_h]‖_F ·
// ‖proj.weight[:, h]‖_F. q and k only choose where the head looks: its attention rows sum to 1, so the head
// adds at most that product times the input's size wherever it looks. The model keeps HS (--head-size) and
// has fewer heads, so its attention width NH·HS falls below C.
//
// The same number of units and of heads is kept in every layer (GptConfig has one MLP width and one head
// count), each layer keeping its own most important ones, in their original order.
//
// Unstructured: magnitude. In each linear weight of the blocks the fraction `sparsity` of entries smallest
// in magnitude is set to zero. Shapes and speed are unchanged (dense kernels); the file compresses better.
//
// Both map every parameter of the result to one of the source (a gather), so AdamW's moments follow their
// weights and the pruned run can be fine-tuned with `triad train --resume`.

#include <cstddef>
#include <vector>

#include "triad/model/config.h"
#include "triad/model/gpt.h"

namespace triad {

// `config` with `remove` of its heads per layer dropped (head_size recorded): a usage error unless at
// least one head is left.
GptConfig without_heads(const GptConfig& config, int remove);

// The widest uniform MLP width at which `config` without `remove_heads` heads per layer has at most
// (1 − remove) of `config`'s parameters; a usage error when removing MLP units cannot reach it, or when
// the heads alone already remove more.
int mlp_width_removing(const GptConfig& config, double remove, int remove_heads = 0);

struct StructuredPruning {
  GptConfig config;                          // the source's with heads and mlp_width narrowed
  std::vector<std::vector<int>> kept_heads;  // per layer, the source's head indices kept, ascending
  std::vector<std::vector<int>> kept_units;  // per layer, the source's MLP unit indices kept, ascending
  std::vector<size_t> source;                // per parameter of the pruned layout: its index in the source's
};

// Keeps `heads` heads and `width` MLP units in every layer, by importance (above). `params` laid out by
// ParameterLayout(config).
StructuredPruning prune_structure(const GptConfig& config, const float* params, int heads, int width);

// values (source layout) -> values of the pruned layout.
std::vector<float> gather(const std::vector<size_t>& source, const float* values);

// Zeroes the `sparsity` fraction of smallest-magnitude entries of each block's four linear weights.
// Returns how many entries are zero among them afterwards.
size_t prune_magnitude(const GptConfig& config, float* params, double sparsity);

}  // namespace triad
