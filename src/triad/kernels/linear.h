#pragma once
// Linear layer, as nn.Linear: weight is (OC, C), row-major.
//   forward   out (M, OC) = inp (M, C) · weight^T + bias
//   backward  dinp (M, C) += dout · weight;  dweight (OC, C) += dout^T · inp;  dbias (OC) += Σ_rows dout
// Threads split rows of M for out/dinp and rows of OC for dweight/dbias: no two threads write the same
// element, so results do not depend on scheduling.

namespace triad {

template <typename Real>
void linear_forward(Real* out, const Real* inp, const Real* weight, const Real* bias, int M, int C, int OC);

// out (M, OC) += bias (nothing when bias is null): the bias of a row-parallel linear, added once after the
// tensor group summed the partial products.
template <typename Real>
void add_bias(Real* out, const Real* bias, int M, int OC);

// Any of dinp, dweight, dbias may be null when that gradient is not wanted.
template <typename Real>
void linear_backward(Real* dinp, Real* dweight, Real* dbias, const Real* dout, const Real* inp,
                     const Real* weight, int M, int C, int OC);

}  // namespace triad
