#include "triad/kernels/vector_ops.h"

#include <cmath>
#include <vector>

#include "triad/core/parallel.h"

namespace triad {

double sum_of_squares(const float* grads, size_t n) {
  std::vector<double> partial(static_cast<size_t>(threads()), 0.0);
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t i = i0; i < i1; ++i) s += static_cast<double>(grads[i]) * grads[i];
        partial[static_cast<size_t>(omp_get_thread_num())] = s;
      },
      1 << 15);
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

double global_norm(const float* grads, size_t n) {
  return std::sqrt(sum_of_squares(grads, n));
}

void scale_in_place(float* data, size_t n, float factor) {
  parallel_chunks(
      n,
      [&](size_t i0, size_t i1) {
#pragma omp simd
        for (size_t i = i0; i < i1; ++i) data[i] *= factor;
      },
      1 << 15);
}

}  // namespace triad
