#include "triad/data/shard.h"

#include <cstring>

#include "triad/core/error.h"

namespace triad {

namespace {

template <typename T>
void put(uint8_t* header, size_t offset, T value) {
  std::memcpy(header + offset, &value, sizeof value);
}

template <typename T>
T get(const uint8_t* header, size_t offset) {
  T value;
  std::memcpy(&value, header + offset, sizeof value);
  return value;
}

}  // namespace

ShardWriter::ShardWriter(std::string path, uint32_t vocab_size, uint32_t eos_id) : file_(path) {
  info_.path = std::move(path);
  info_.vocab_size = vocab_size;
  info_.eos_id = eos_id;
  info_.token_bytes = vocab_size <= 65536 ? 2 : 4;
  uint8_t zeros[kShardHeaderBytes] = {};
  file_.write(zeros, sizeof zeros);  // the header is filled in by finish()
}

void ShardWriter::add_document(const std::vector<int>& tokens) {
  const size_t width = info_.token_bytes;
  buffer_.resize((tokens.size() + 1) * width);
  uint8_t* p = buffer_.data();
  auto emit = [&](uint32_t t) {
    if (t >= info_.vocab_size) fail("internal: token {} outside the vocabulary of {}", t, info_.vocab_size);
    std::memcpy(p, &t, width);  // little-endian: the low bytes come first
    p += width;
  };
  for (int t : tokens) emit(static_cast<uint32_t>(t));
  emit(info_.eos_id);
  sha_.update(buffer_.data(), buffer_.size());
  file_.write(buffer_.data(), buffer_.size());
  info_.tokens += tokens.size() + 1;
  info_.documents += 1;
}

ShardInfo ShardWriter::finish() {
  Digest digest = sha_.finish();
  info_.sha256 = hex(digest);
  uint8_t header[kShardHeaderBytes] = {};
  std::memcpy(header, kShardMagic, sizeof kShardMagic);
  put<uint32_t>(header, 8, kShardVersion);
  put<uint32_t>(header, 12, info_.token_bytes);
  put<uint64_t>(header, 16, info_.tokens);
  put<uint64_t>(header, 24, info_.documents);
  put<uint32_t>(header, 32, info_.vocab_size);
  put<uint32_t>(header, 36, info_.eos_id);
  std::memcpy(header + 40, digest.data(), digest.size());
  file_.write_at(0, header, sizeof header);
  file_.commit();
  return info_;
}

ShardReader::ShardReader(const std::string& path) : file_(path) {
  const uint8_t* h = file_.data();
  if (file_.size() < kShardHeaderBytes || std::memcmp(h, kShardMagic, sizeof kShardMagic) != 0) {
    fail("{}: not a triad token shard (bad magic)", path);
  }
  uint32_t version = get<uint32_t>(h, 8);
  if (version != kShardVersion)
    fail("{}: shard format version {} (this triad reads {})", path, version, kShardVersion);
  info_.path = path;
  info_.token_bytes = get<uint32_t>(h, 12);
  info_.tokens = get<uint64_t>(h, 16);
  info_.documents = get<uint64_t>(h, 24);
  info_.vocab_size = get<uint32_t>(h, 32);
  info_.eos_id = get<uint32_t>(h, 36);
  if (info_.token_bytes != 2 && info_.token_bytes != 4)
    fail("{}: bad token width {}", path, info_.token_bytes);
  // Compared by division: a token count near 2^64 would wrap the product round to the file's size.
  const uint64_t payload_bytes = file_.size() - kShardHeaderBytes;
  if (payload_bytes % info_.token_bytes != 0 || payload_bytes / info_.token_bytes != info_.tokens) {
    fail("{}: truncated or padded: {} bytes, the header promises {} tokens", path, file_.size(),
         info_.tokens);
  }
  payload_ = h + kShardHeaderBytes;
  Sha256 sha;
  sha.update(payload_, payload_bytes);
  Digest digest = sha.finish();
  if (std::memcmp(digest.data(), h + 40, digest.size()) != 0) {
    fail("{}: checksum mismatch: the payload is corrupt (SHA-256 {}, header says {})", path, hex(digest),
         hex(get<Digest>(h, 40)));
  }
  info_.sha256 = hex(digest);
  // The model looks every token up in its embedding: one outside the vocabulary would be refused there, by
  // then without the name of the file it came from.
  if (info_.eos_id >= info_.vocab_size)
    fail("{}: the EOS id {} is outside the shard's vocabulary of {}", path, info_.eos_id, info_.vocab_size);
  for (uint64_t i = 0; i < info_.tokens; ++i) {
    if (token(i) >= info_.vocab_size) {
      fail(
          "{}: token {} at position {} is outside the shard's vocabulary of {} (the file was written by "
          "something other than 'triad prepare', or altered along with its checksum)",
          path, token(i), i, info_.vocab_size);
    }
  }
}

uint32_t ShardReader::token(uint64_t i) const {
  if (info_.token_bytes == 2) return get<uint16_t>(payload_, i * 2);
  return get<uint32_t>(payload_, i * 4);
}

void ShardReader::copy(uint64_t begin, size_t n, int32_t* out) const {
  if (begin + n > info_.tokens) fail("internal: {} read past the end", info_.path);
  if (info_.token_bytes == 2) {
    const auto* p = payload_ + begin * 2;
    for (size_t i = 0; i < n; ++i) out[i] = get<uint16_t>(p, i * 2);
  } else {
    std::memcpy(out, payload_ + begin * 4, n * 4);
  }
}

}  // namespace triad
