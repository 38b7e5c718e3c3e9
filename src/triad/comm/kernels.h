#pragma once
// The arithmetic of the gradient codecs, free of MPI so that tests and the probe can run and time it alone.

#include <cstddef>
#include <cstdint>

namespace triad::comm {

// fp16 (IEEE binary16, round to nearest even). Magnitudes beyond 65504 saturate; NaN stays NaN.
void fp16_encode(const float* x, size_t n, uint16_t* out);
void fp16_decode(const uint16_t* in, size_t n, float* out);
void fp16_decode_add(const uint16_t* in, size_t n, float* acc);  // acc += decode(in)

// int8 with one scale per chunk of `chunk` values: s = max|x| / 127 over the chunk, q = round(x / s), so
// |decode - x| <= s / 2. With noise_seed != 0 rounding is stochastic and unbiased, q = floor(x / s + u) with
// u uniform in [0, 1) from a hash of (noise_seed, index), so |decode - x| < s. Layout: the float scales of
// all chunks, then the n int8 values.
size_t int8_bytes(size_t n, size_t chunk);
void int8_encode(const float* x, size_t n, size_t chunk, uint64_t noise_seed, uint8_t* out);
void int8_decode(const uint8_t* in, size_t n, size_t chunk, float* out);
void int8_decode_add(const uint8_t* in, size_t n, size_t chunk, float* acc);

// Top-k by magnitude: writes the k indices of the largest |x[i]| in increasing index order and their values.
// Ties at the threshold go to the lower indices; NaN counts as the largest. `scratch` holds n floats.
void topk_select(const float* x, size_t n, size_t k, uint32_t* index, float* value, float* scratch);

// Elias-Fano code of k strictly increasing indices below n, so top-K's indices cost about 2 + log2(n / k)
// bits each instead of 32 (8.6 bits at 1 %). Each index splits into its low l = floor(log2(n / k)) bits,
// stored as they are, and its high part h = index >> l, stored in unary: index j sets bit h + j of a bit
// array. Layout, one bit stream from the least significant bit of byte 0: the k low parts, then the
// ((n - 1) >> l) + k high bits. The size depends on n and k alone, so every rank's block is the same size.
size_t index_code_bytes(size_t n, size_t k);
void index_encode(const uint32_t* index, size_t k, size_t n, uint8_t* out);
// False if `in` does not hold k increasing indices below n (then `index` is unspecified).
bool index_decode(const uint8_t* in, size_t k, size_t n, uint32_t* index);

// Gram-Schmidt on the columns of the row-major rows x cols matrix p: afterwards they are orthonormal (a zero
// column stays zero).
void orthogonalize(float* p, size_t rows, size_t cols);

// A well-mixed 64-bit hash (splitmix64), for seeding and counter-based random numbers.
uint64_t mix64(uint64_t x);

}  // namespace triad::comm
