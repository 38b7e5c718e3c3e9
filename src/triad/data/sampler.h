#pragma once
// Reading prepared data for training: a split's shards as one dataset, and a deterministic sampler.
//
// The sampler cuts each shard into non-overlapping windows of T + 1 tokens (inputs and next-token targets)
// and visits all windows once per epoch in an order drawn from (seed, epoch): a Feistel-network permutation
// of the window indices, so it needs no memory however large the corpus. A global batch of B windows is
// the next B indices of that order; rank r of W takes rows [r·B/W, (r+1)·B/W), so one command trains the
// same model at any world size (with --balance, the rows its share of the batch says: next_rows). The
// position (epoch, cursor) is all the state there is: saving and restoring it resumes the exact sequence.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "triad/data/shard.h"

namespace triad {

class TokenDataset {
 public:
  // Opens every shard of `split` ("train" or "val") listed in `dir`/manifest.json, verifying checksums.
  static TokenDataset open(const std::string& dir, const std::string& split);

  uint64_t tokens() const { return tokens_; }
  uint32_t vocab_size() const { return vocab_size_; }
  uint32_t eos_id() const { return eos_id_; }
  const std::vector<std::unique_ptr<ShardReader>>& shards() const { return shards_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<ShardReader>> shards_;
  uint64_t tokens_ = 0;
  uint32_t vocab_size_ = 0, eos_id_ = 0;
};

struct SamplerState {
  uint64_t epoch = 0;
  uint64_t cursor = 0;  // windows of this epoch already handed out, across all ranks
  bool operator==(const SamplerState&) const = default;
};

struct SamplerOptions {
  int seq_len = 256;  // T: each window holds T + 1 tokens
  uint64_t seed = 0;
  bool shuffle = true;  // false: windows in storage order (evaluation)
  int rank = 0;
  int world = 1;
};

class Sampler {
 public:
  Sampler(const TokenDataset& data, const SamplerOptions& options);

  uint64_t windows_per_epoch() const { return windows_; }
  // Fills `out` ((B / world) x (T + 1) tokens) with this rank's rows of the next global batch of B windows.
  void next_batch(int global_batch, int32_t* out);
  // Fills `out` (rows x (T + 1) tokens) with rows [offset, offset + rows) of the next global batch of B
  // windows: a rank's uneven share (parallel/balance.h). Every rank draws every batch, whatever its rows.
  void next_rows(int global_batch, int offset, int rows, int32_t* out);

  SamplerState state() const { return state_; }
  void restore(const SamplerState& state) { state_ = state; }

  // The window at position `index` of `epoch`'s order, for tests and tools.
  uint64_t window_at(uint64_t epoch, uint64_t index) const;
  // Copies window `window` (an index in storage order, < windows_per_epoch()) into `out` (T + 1 tokens):
  // what DP-SGD's Poisson sampling uses instead of the epoch order.
  void copy_window(uint64_t window, int32_t* out) const;

 private:
  const TokenDataset& data_;
  SamplerOptions options_;
  std::vector<uint64_t> first_window_;  // per shard, prefix sums of window counts
  uint64_t windows_ = 0;
  SamplerState state_;
};

}  // namespace triad
