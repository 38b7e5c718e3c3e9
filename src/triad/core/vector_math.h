#pragma once
// glibc's libmvec has SIMD versions of expf and tanhf (16 floats per call on AVX-512). Declaring the
// functions' SIMD clones lets a `#pragma omp simd` loop that calls std::exp / std::tanh on floats use them
// instead of one scalar call per element (with -fno-math-errno, which the build sets). Included only by the
// kernels whose inner loops are dominated by these functions; numerics are libmvec's (< 4 ulp).

extern "C" {
float expf(float) noexcept __attribute__((__simd__("notinbranch")));
float tanhf(float) noexcept __attribute__((__simd__("notinbranch")));
}
