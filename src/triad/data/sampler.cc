#include "triad/data/sampler.h"

#include <xxhash.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad {

TokenDataset TokenDataset::open(const std::string& dir, const std::string& split) {
  std::string manifest_path = (std::filesystem::path(dir) / "manifest.json").string();
  if (!path_exists(manifest_path)) {
    fail_usage("{} is not a prepared data directory (no manifest.json); create one with 'triad prepare'",
               dir);
  }
  nlohmann::json manifest;
  try {
    manifest = nlohmann::json::parse(read_file(manifest_path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", manifest_path, e.what());
  }
  TokenDataset data;
  data.dir_ = dir;
  if (!manifest.contains("shards") || !manifest["shards"].is_array())
    fail("{}: no \"shards\" list", manifest_path);
  for (size_t i = 0; i < manifest["shards"].size(); ++i) {
    const nlohmann::json& entry = manifest["shards"][i];
    if (!entry.is_object() || !entry.contains("split") || !entry["split"].is_string() ||
        !entry.contains("file") || !entry["file"].is_string()) {
      fail("{}: shards[{}] is not an object with the strings \"file\" and \"split\"", manifest_path, i);
    }
    if (entry["split"].get<std::string>() != split) continue;
    std::string file = entry["file"].get<std::string>();
    auto shard = std::make_unique<ShardReader>((std::filesystem::path(dir) / file).string());
    const ShardInfo& info = shard->info();
    if (data.shards_.empty()) {
      data.vocab_size_ = info.vocab_size;
      data.eos_id_ = info.eos_id;
    } else if (info.vocab_size != data.vocab_size_ || info.eos_id != data.eos_id_) {
      fail("{}: vocabulary differs from the other shards of {}", info.path, dir);
    }
    data.tokens_ += info.tokens;
    data.shards_.push_back(std::move(shard));
  }
  if (data.shards_.empty()) fail("{}: no {} shards", manifest_path, split);
  return data;
}

Sampler::Sampler(const TokenDataset& data, const SamplerOptions& options) : data_(data), options_(options) {
  if (options.seq_len < 1) fail_usage("sequence length must be positive, got {}", options.seq_len);
  if (options.world < 1 || options.rank < 0 || options.rank >= options.world) {
    fail_usage("rank {} is outside a world of {}", options.rank, options.world);
  }
  for (const auto& shard : data.shards()) {
    first_window_.push_back(windows_);
    windows_ += shard->size() > 0 ? (shard->size() - 1) / static_cast<uint64_t>(options.seq_len) : 0;
  }
  if (windows_ == 0) {
    fail_usage("{}: {} tokens cannot fill one window of {} + 1 tokens; use a shorter --seq-len", data.dir(),
               data.tokens(), options.seq_len);
  }
}

// A bijection of [0, windows_) keyed by (seed, epoch): a 4-round balanced Feistel network on the smallest
// even number of bits that covers the range, with cycle walking to stay inside it.
uint64_t Sampler::window_at(uint64_t epoch, uint64_t index) const {
  if (!options_.shuffle) return index;
  int bits = 2;
  while ((uint64_t{1} << bits) < windows_) bits += 2;
  const int half = bits / 2;
  const uint64_t mask = (uint64_t{1} << half) - 1;
  uint64_t x = index;
  do {
    uint64_t left = x >> half, right = x & mask;
    for (uint64_t round = 0; round < 4; ++round) {
      uint64_t key[3] = {right, epoch, round};
      uint64_t f = XXH3_64bits_withSeed(key, sizeof key, options_.seed) & mask;
      uint64_t next_right = left ^ f;
      left = right;
      right = next_right;
    }
    x = (left << half) | right;
  } while (x >= windows_);
  return x;
}

void Sampler::copy_window(uint64_t window, int32_t* out) const {
  size_t s = std::upper_bound(first_window_.begin(), first_window_.end(), window) - first_window_.begin() - 1;
  uint64_t offset = (window - first_window_[s]) * static_cast<uint64_t>(options_.seq_len);
  data_.shards()[s]->copy(offset, static_cast<size_t>(options_.seq_len) + 1, out);
}

void Sampler::next_batch(int global_batch, int32_t* out) {
  if (global_batch % options_.world != 0) {
    fail_usage("the global batch {} does not split evenly over {} ranks", global_batch, options_.world);
  }
  const int local = global_batch / options_.world;
  next_rows(global_batch, options_.rank * local, local, out);
}

void Sampler::next_rows(int global_batch, int offset, int rows, int32_t* out) {
  if (offset < 0 || rows < 0 || offset + rows > global_batch) {
    fail("rows [{}, {}) are outside a batch of {}", offset, offset + rows, global_batch);
  }
  const size_t row = static_cast<size_t>(options_.seq_len) + 1;
  for (int i = 0; i < global_batch; ++i) {
    if (state_.cursor == windows_) {
      ++state_.epoch;
      state_.cursor = 0;
    }
    uint64_t window = window_at(state_.epoch, state_.cursor++);
    int local_row = i - offset;
    if (local_row >= 0 && local_row < rows) copy_window(window, out + static_cast<size_t>(local_row) * row);
  }
}

}  // namespace triad
