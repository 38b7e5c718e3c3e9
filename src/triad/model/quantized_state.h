#pragma once
// 8-bit optimizer state: the block-wise dynamic quantization of Dettmers et al. 2022 ("8-bit Optimizers via
// Block-wise Quantization", the scheme of bitsandbytes' 8-bit Adam). A run of values is cut into blocks of
// kQuantBlock; each block keeps one fp32 scale, its absolute maximum, and one byte per value: the index of
// the code nearest to value / absmax in a sorted map of 256 codes. Dequantizing is code × absmax.
//
// The map is the *dynamic* (dynamic-tree) one: a code is ±10^-e × f for an exponent e in 0..6 and a
// fraction f in (0.1, 1), where the larger the exponent the fewer fractions — 1 at 10^-6, 64 at 10^0
// (128 without a sign). So it resolves values from 1e-7 to 1 of a block's absmax, with relative steps of
// about 1 % near the top: a moment's small entries are not all rounded to zero by its largest one. AdamW's
// first moment takes the signed map (127 negative codes, 0, 128 positive up to 1), the second moment, never
// negative, the unsigned one (0, 254 codes, 1): twice the resolution.

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "triad/model/params.h"

namespace triad {

constexpr size_t kQuantBlock = 2048;

enum class QuantMap { kSigned, kUnsigned };
using CodeMap = std::array<float, 256>;

// The 256 codes of the dynamic map, ascending (bitsandbytes' create_dynamic_map(signed, 7, 8)).
const CodeMap& dynamic_map(QuantMap map);

// The index of the code nearest to x (binary search; a tie takes the lower code). x outside the codes' range
// takes the end code.
uint8_t nearest_code(const CodeMap& codes, float x);
// The same index for x in [-1, 1] of dynamic_map(map), by a table over x's exponent and top mantissa bits
// instead of a search (what quantize_block uses).
uint8_t nearest_code_indexed(QuantMap map, float x);

// n <= kQuantBlock values to codes; returns the block's absmax (0 for a block of zeros, whose codes are then
// the map's 0).
float quantize_block(const float* values, size_t n, QuantMap map, uint8_t* codes);
void dequantize_block(const uint8_t* codes, size_t n, float absmax, QuantMap map, float* values);

// The block boundaries of [begin, end) of a flat buffer laid out by `layout`: each tensor is cut into runs of
// kQuantBlock from its own start (its last run shorter), as bitsandbytes quantizes each parameter apart, so
// a block never mixes two tensors' scales. Ascending, from `begin` to `end`; both must be boundaries
// (quantization_boundaries(layout, 0, count) lists all of them).
std::vector<size_t> quantization_boundaries(const ParameterLayout& layout, size_t begin, size_t end);

// Under --optimizer-states 8bit, the tensors whose moments stay fp32, as bitsandbytes keeps them: those of
// fewer than kMinQuantizedTensor values (LayerNorm gains, biases: its min_8bit_size) and the embeddings (its
// StableEmbedding), whose rare tokens' rows sit decades below their block's absmax, where the dynamic map
// has one or two codes a decade.
constexpr size_t kMinQuantizedTensor = 4096;
bool keeps_fp32_state(const TensorSpec& t);
// How many values of [begin, end) of the flat buffer keep fp32 moments under 8-bit: the length of the
// compact run of those moments (in the order of the flat buffer) that AdamW and the checkpoint hold.
size_t fp32_state_count(const ParameterLayout& layout, size_t begin, size_t end);

// Bytes of one 8-bit moment of `count` values cut into `blocks` blocks: a code each, a scale per block.
inline size_t quantized_moment_bytes(size_t count, size_t blocks) {
  return count * sizeof(uint8_t) + blocks * sizeof(float);
}

}  // namespace triad
