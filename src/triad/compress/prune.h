#pragma once
// Pruning a trained GPT.
//
// Structured: MLP units. Unit j of a block's MLP is row j of mlp.fc (weight and bias) and column j of
// mlp.proj; removing it removes 2C + 1 parameters and the matching work, so the pruned model is smaller and
// faster. Its importance is the size of what it can add to the residual stream, ‖fc.weight[j]‖₂ ·
// ‖proj.weight[:, j]‖₂ (the GELU is 1-Lipschitz-ish around 0). The same number of units is kept in every
// layer (GptConfig has one MLP width, --mlp-width), each layer keeping its own most important units, in
// their original order. Attention heads are not pruned: GptConfig ties the attention width to d_model.
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

// The widest uniform MLP width whose model has at most (1 − remove) of `config`'s parameters; a usage
// error when removing MLP units alone cannot reach it.
int mlp_width_removing(const GptConfig& config, double remove);

struct MlpPruning {
  GptConfig config;                    // the source's with mlp_width narrowed
  std::vector<std::vector<int>> kept;  // per layer, the source's unit indices kept, ascending
  std::vector<size_t> source;          // per parameter of the pruned layout: its index in the source's
};

// Keeps `width` units in every layer, by importance (above). `params` laid out by ParameterLayout(config).
MlpPruning prune_mlp_units(const GptConfig& config, const float* params, int width);

// values (source layout) -> values of the pruned layout.
std::vector<float> gather(const std::vector<size_t>& source, const float* values);

// Zeroes the `sparsity` fraction of smallest-magnitude entries of each block's four linear weights.
// Returns how many entries are zero among them afterwards.
size_t prune_magnitude(const GptConfig& config, float* params, double sparsity);

}  // namespace triad
