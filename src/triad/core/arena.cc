#include "triad/core/arena.h"

#include <cstdlib>

#include "triad/core/error.h"

namespace triad {

ActivationArena::~ActivationArena() {
  for (auto& [k, slot] : slots_) {
    if (slot.live) std::free(slot.data);
  }
  trim();
}

void* ActivationArena::acquire(int block, int kind, size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  Slot& slot = slots_[key(block, kind)];
  slot.block = block;
  slot.kind = kind;
  if (slot.live) {
    if (slot.bytes == bytes) return slot.data;
    release(block, kind);
  }
  auto it = free_.find(bytes);
  if (it != free_.end()) {
    slot.data = it->second;
    free_.erase(it);
  } else {
    slot.data = std::aligned_alloc(64, bytes);
    if (!slot.data) fail("out of memory: {} bytes for activation {}:{}", bytes, block, name_(kind));
    held_bytes_ += bytes;
  }
  slot.bytes = bytes;
  slot.live = true;
  live_bytes_ += bytes;
  if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
  return slot.data;
}

void ActivationArena::release(int block, int kind) {
  auto it = slots_.find(key(block, kind));
  if (it == slots_.end() || !it->second.live) return;
  Slot& slot = it->second;
  free_.emplace(slot.bytes, slot.data);
  slot.live = false;
  slot.data = nullptr;
  live_bytes_ -= slot.bytes;
}

bool ActivationArena::live(int block, int kind) const {
  auto it = slots_.find(key(block, kind));
  return it != slots_.end() && it->second.live;
}

void* ActivationArena::get(int block, int kind) const {
  auto it = slots_.find(key(block, kind));
  return it != slots_.end() && it->second.live ? it->second.data : nullptr;
}

std::vector<UnitStats> ActivationArena::units() const {
  std::vector<UnitStats> out;
  for (const auto& [k, slot] : slots_) out.push_back({slot.block, slot.kind, slot.bytes, slot.live});
  return out;
}

void ActivationArena::trim() {
  for (auto& [bytes, data] : free_) {
    std::free(data);
    held_bytes_ -= bytes;
  }
  free_.clear();
}

}  // namespace triad
