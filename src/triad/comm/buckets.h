#pragma once
// Gradient buckets: contiguous ranges of the flat gradient buffer that are aggregated as one message.
//
// The model's gradients are one float buffer; each block (embeddings, transformer blocks 1..L, final
// LayerNorm) is a contiguous range in forward order, and the backward finishes them in reverse order. A
// bucket is a run of whole, adjacent blocks; it is ready once the backward has finished its lowest block.

#include <cstddef>
#include <vector>

namespace triad::comm {

// A row-major rows x cols parameter matrix inside the flat buffer (PowerSGD compresses these; every other
// element of a bucket — biases, LayerNorm — is sent as is).
struct Matrix {
  size_t offset, rows, cols;
};

// A contiguous range of the flat buffer (a block or a bucket) and the matrices inside it.
struct GradRange {
  size_t offset = 0, count = 0;
  std::vector<Matrix> matrices;
  size_t end() const { return offset + count; }
};

struct BucketPlan {
  std::vector<GradRange> buckets;  // bucket 0 is the first the backward finishes
  // For each block, the bucket that becomes ready when the backward finishes that block, or -1.
  std::vector<int> ready_after_block;
};

// Groups blocks (in forward order, adjacent in the buffer) into buckets of at least bucket_mb MiB each,
// walking from the last block back, the order the backward finishes them. bucket_mb = 0 makes one bucket per
// block. Fails when the blocks are not adjacent or a matrix lies outside its block.
BucketPlan plan_buckets(const std::vector<GradRange>& blocks, double bucket_mb);

}  // namespace triad::comm
