#include "triad/core/blas.h"

#if defined(TRIAD_BLAS_OPENBLAS)
extern "C" void openblas_set_num_threads(int);
#elif defined(TRIAD_BLAS_BLIS)
#include <blis.h>
#endif

namespace triad {

void blas_set_threads(int threads) {
#if defined(TRIAD_BLAS_OPENBLAS)
  openblas_set_num_threads(threads);
#elif defined(TRIAD_BLAS_BLIS)
  bli_thread_set_num_threads(threads);
#endif
}

const char* blas_name() {
#if defined(TRIAD_BLAS_OPENBLAS)
  return "openblas";
#else
  return "blis";
#endif
}

}  // namespace triad
