#pragma once
// Token shards: a 128-byte header then the tokens, little-endian, documents separated by the EOS token.
//
//   offset  size  field
//        0     8  magic "TRIADTOK"
//        8     4  format version (1)
//       12     4  bytes per token (2 when the vocabulary fits in 16 bits, else 4)
//       16     8  token count
//       24     8  document count
//       32     4  vocabulary size
//       36     4  EOS id
//       40    32  SHA-256 of the payload (the token bytes)
//       72    56  zero
//      128     -  payload
//
// The writer streams tokens, hashing as it goes, and fills the header in last; the file appears under its
// final name only when complete (AtomicFile). The reader maps the file and verifies the checksum on open.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "triad/core/file_io.h"
#include "triad/core/sha256.h"

namespace triad {

inline constexpr char kShardMagic[8] = {'T', 'R', 'I', 'A', 'D', 'T', 'O', 'K'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderBytes = 128;

struct ShardInfo {
  std::string path;
  uint64_t tokens = 0;
  uint64_t documents = 0;
  uint32_t token_bytes = 2;
  uint32_t vocab_size = 0;
  uint32_t eos_id = 0;
  std::string sha256;  // of the payload, hex
};

class ShardWriter {
 public:
  ShardWriter(std::string path, uint32_t vocab_size, uint32_t eos_id);
  // Appends one document's tokens followed by EOS.
  void add_document(const std::vector<int>& tokens);
  uint64_t tokens() const { return info_.tokens; }
  // Completes the header, fsyncs and renames into place.
  ShardInfo finish();

 private:
  ShardInfo info_;
  AtomicFile file_;
  Sha256 sha_;
  std::vector<uint8_t> buffer_;
};

class ShardReader {
 public:
  // Maps `path`, checks the header and the payload checksum; any mismatch is an error naming the file.
  explicit ShardReader(const std::string& path);

  const ShardInfo& info() const { return info_; }
  uint64_t size() const { return info_.tokens; }
  uint32_t token(uint64_t i) const;
  // Copies tokens [begin, begin + n) as int32.
  void copy(uint64_t begin, size_t n, int32_t* out) const;

 private:
  ShardInfo info_;
  MappedFile file_;
  const uint8_t* payload_ = nullptr;
};

}  // namespace triad
