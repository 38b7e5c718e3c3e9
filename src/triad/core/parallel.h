#pragma once
// One thread pool for everything: OpenMP. BLAS runs single-threaded inside our parallel regions (see
// kernels/gemm.h), so two pools never spin against each other. Work is split into one static, contiguous
// chunk per thread, which makes every result independent of scheduling: the same thread count gives the
// same bits.

#include <omp.h>

#include <cstddef>

namespace triad {

// Threads for OpenMP regions (and hence for all kernels); BLAS is pinned to 1 thread per call. A count
// check_threads refuses is a usage error.
void set_threads(int threads);
int threads();

// The most threads any command starts: 1024, or the hardware threads if there are more. A fixed number, not a
// multiple of this machine's cores, so that a command line or --config that works on one machine works on
// another, and a run can be replayed on a smaller machine with the thread count its bits depend on. 1024 is
// past any count that speeds up the work and far below where starting the threads fails (50000 on 2 cores
// and 8 GB: each OpenMP thread reserves a stack).
int max_threads();
// The check of every --threads (train, prepare, eval, generate, probe): a usage error naming the flag, the
// value and the bound unless 1 <= threads <= max_threads().
void check_threads(int threads);

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
