#pragma once
// SHA-256 (OpenSSL) for content addressing: shard payloads, input files, checkpoints, audit entries.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace triad {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t bytes);
  void update(std::string_view text) { update(text.data(), text.size()); }
  Digest finish();

 private:
  struct State;
  State* state_;
};

Digest sha256(std::string_view data);
std::string hex(const Digest& digest);
std::string sha256_hex(std::string_view data);
std::string sha256_file_hex(const std::string& path);

}  // namespace triad
