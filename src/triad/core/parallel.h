#pragma once
// One thread pool for everything: OpenMP. BLAS runs single-threaded inside our parallel regions (see
// kernels/gemm.h), so two pools never spin against each other. Work is split into one static, contiguous
// chunk per thread, which makes every result independent of scheduling: the same thread count gives the
// same bits.

#include <omp.h>

#include <cstddef>

namespace triad {

// Threads for OpenMP regions (and hence for all kernels); BLAS is pinned to 1 thread per call.
void set_threads(int threads);
int threads();

// Calls fn(begin, end) on [0, n) cut into one contiguous chunk per thread. Below `serial_below` items the
// call stays on the calling thread: forking costs microseconds.
template <typename F>
void parallel_chunks(size_t n, F&& fn, size_t serial_below = 2) {
  if (n < serial_below || threads() == 1) {
    if (n > 0) fn(size_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const size_t t = static_cast<size_t>(omp_get_thread_num());
    const size_t nt = static_cast<size_t>(omp_get_num_threads());
    const size_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace triad
