#pragma once
// The one place that includes a CBLAS header: OpenBLAS (default) or BLIS, chosen at configure time with
// -DTRIAD_BLAS=openblas|blis.

#include <cblas.h>

namespace triad {

// Threads the BLAS library may use inside one call.
void blas_set_threads(int threads);
const char* blas_name();

}  // namespace triad
