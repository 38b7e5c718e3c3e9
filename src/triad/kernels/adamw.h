#pragma once
// AdamW (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments.
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * p)
// `step` counts from 1.

#include <cstddef>

namespace triad {

struct AdamWParams {
  float lr = 3e-4f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
};

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n, const AdamWParams& p,
                  int step);
// The same update on the calling thread, for callers that share the work out themselves (the 8-bit state's
// blocks, model/optimizer.h). Each element's arithmetic is the same as adamw_update's.
void adamw_update_serial(float* params, const float* grads, float* m, float* v, size_t n,
                         const AdamWParams& p, int step);

}  // namespace triad
