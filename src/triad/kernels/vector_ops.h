#pragma once
// Reductions and scaling over a flat float buffer (gradients), threaded in fixed chunks.

#include <cstddef>

namespace triad {

// Σ g², summed per thread chunk and then across chunks in order: deterministic for a thread count.
double sum_of_squares(const float* data, size_t n);
// sqrt(sum_of_squares).
double global_norm(const float* data, size_t n);
void scale_in_place(float* data, size_t n, float factor);

}  // namespace triad
