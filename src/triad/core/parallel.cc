#include "triad/core/parallel.h"

#include "triad/core/blas.h"

namespace triad {

namespace {
int g_threads = 1;
}

void set_threads(int threads) {
  g_threads = threads < 1 ? 1 : threads;
  omp_set_num_threads(g_threads);
  blas_set_threads(1);
}

int threads() {
  return g_threads;
}

}  // namespace triad
