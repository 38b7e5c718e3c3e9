#pragma once
// What the MPI tests of comm_collectives_mpitest share: inputs derived from a seed, so that each rank can
// compute every rank's input and the exact reference itself, and the set-up of a GradSync step.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "triad/comm/buckets.h"
#include "triad/comm/context.h"
#include "triad/comm/grad_sync.h"
#include "triad/comm/kernels.h"

namespace triad::comm {

// The job's one context, opened by main().
inline std::unique_ptr<Context>& opened() {
  static std::unique_ptr<Context> context;
  return context;
}
inline Context& ctx() {
  return *opened();
}

// Each bucket's codec as written on the command line.
inline std::vector<std::string> names(const std::vector<CodecSpec>& codecs) {
  std::vector<std::string> out;
  for (const CodecSpec& c : codecs) out.push_back(c.name());
  return out;
}

// Input of `rank`: values in [-scale, scale), none zero.
inline std::vector<float> input(int rank, size_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) {
    float u = static_cast<float>(mix64(seed * 1000003 + rank * 7919 + i) >> 40) * 0x1p-24f;  // [0, 1)
    x[i] = (u - 0.5f) * 2 * scale;
    if (x[i] == 0) x[i] = scale / 3;
  }
  return x;
}

// The exact mean, summed in rank order as the codecs do.
inline std::vector<float> mean_of_inputs(size_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> sum(n, 0.0f);
  for (int r = 0; r < ctx().world(); ++r) {
    std::vector<float> x = input(r, n, seed, scale);
    for (size_t i = 0; i < n; ++i) sum[i] += x[i];
  }
  for (float& v : sum) v *= 1.0f / ctx().world();
  return sum;
}

inline GradSyncOptions options_for(const std::string& codec, Progress progress = Progress::kThread) {
  GradSyncOptions options;
  options.codec = parse_codec_spec(codec);
  options.progress = progress;
  return options;
}

// Buckets of about `per_bucket` floats covering n, as plan_buckets would make from equal blocks.
inline std::vector<GradRange> even_buckets(size_t n, size_t per_bucket) {
  std::vector<GradRange> blocks;
  for (size_t at = 0; at < n; at += per_bucket) blocks.push_back({at, std::min(per_bucket, n - at), {}});
  return plan_buckets(blocks, 0).buckets;
}

// Overwrites the gradient buffer in place: GradSync holds a pointer to it.
inline void refill(std::vector<float>& grads, const std::vector<float>& values) {
  std::copy(values.begin(), values.end(), grads.begin());
}

// One step: buckets handed over in backward order (bucket 0 first), then finish().
inline void step(GradSync& sync, size_t buckets) {
  for (size_t b = 0; b < buckets; ++b) sync.bucket_ready(static_cast<int>(b));
  sync.finish();
}

}  // namespace triad::comm
