#include "triad/core/parallel.h"

#include <algorithm>
#include <thread>

#include "triad/core/blas.h"
#include "triad/core/error.h"

namespace triad {

namespace {
int g_threads = 1;
}

int max_threads() {
  return std::max(1024, static_cast<int>(std::thread::hardware_concurrency()));
}

void check_threads(int threads) {
  if (threads < 1) fail_usage("--threads must be at least 1, got {}", threads);
  if (threads > max_threads()) {
    fail_usage("--threads {} is more than {}, the most triad starts; this machine has {} hardware threads",
               threads, max_threads(), std::max(1u, std::thread::hardware_concurrency()));
  }
}

void set_threads(int threads) {
  check_threads(threads);
  g_threads = threads;
  omp_set_num_threads(g_threads);
  blas_set_threads(1);
}

int threads() {
  return g_threads;
}

}  // namespace triad
