#include "triad/comm/buckets.h"

#include "triad/core/error.h"

namespace triad::comm {

BucketPlan plan_buckets(const std::vector<GradRange>& blocks, double bucket_mb) {
  if (!(bucket_mb >= 0)) fail_usage("--bucket-mb must be >= 0, not {}", bucket_mb);
  for (size_t b = 0; b < blocks.size(); ++b) {
    if (b > 0 && blocks[b].offset != blocks[b - 1].end()) {
      fail("gradient block {} starts at float {}, not where block {} ends ({})", b, blocks[b].offset, b - 1,
           blocks[b - 1].end());
    }
    for (const Matrix& m : blocks[b].matrices) {
      if (m.offset < blocks[b].offset || m.offset + m.rows * m.cols > blocks[b].end()) {
        fail("gradient block {}: a {}x{} matrix at float {} lies outside the block [{}, {})", b, m.rows,
             m.cols, m.offset, blocks[b].offset, blocks[b].end());
      }
    }
  }
  double bucket_bytes = bucket_mb * 1024 * 1024;
  BucketPlan plan;
  plan.ready_after_block.assign(blocks.size(), -1);
  GradRange bucket;
  for (size_t b = blocks.size(); b-- > 0;) {
    // Walking backwards: each block goes in front of the bucket being filled.
    bucket.offset = blocks[b].offset;
    bucket.count += blocks[b].count;
    bucket.matrices.insert(bucket.matrices.begin(), blocks[b].matrices.begin(), blocks[b].matrices.end());
    if (bucket.count * sizeof(float) >= bucket_bytes || b == 0) {
      plan.ready_after_block[b] = static_cast<int>(plan.buckets.size());
      plan.buckets.push_back(std::move(bucket));
      bucket = GradRange{};
    }
  }
  return plan;
}

}  // namespace triad::comm
