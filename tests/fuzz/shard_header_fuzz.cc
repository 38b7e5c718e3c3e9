// Token shard headers (data/shard.h): the input as a shard file, read as it is and again with the SHA-256
// field (bytes 40-71) set to the checksum of bytes 128 onwards, so that the checks after the checksum's are
// reached too. Every token of a shard that opens is read.
#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "triad/core/sha256.h"
#include "triad/data/shard.h"

namespace {

void read_shard(const std::string& path) {
  triad::fuzz::expect_clean([&] {
    triad::ShardReader shard(path);
    volatile uint64_t sum = 0;
    const uint64_t n = shard.size();
    for (uint64_t i = 0; i < n; ++i) sum = sum + shard.token(i);
    std::vector<int32_t> all(n);
    if (n > 0) shard.copy(0, n, all.data());  // as the sampler calls it: never for no tokens
    (void)shard.info().sha256;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return 0;
  const std::string path = triad::fuzz::scratch_dir() + "/input.bin";
  std::string bytes(triad::fuzz::as_text(data, size));
  triad::fuzz::write_bytes(path, bytes);
  read_shard(path);
  if (bytes.size() >= triad::kShardHeaderBytes) {
    triad::Sha256 sha;
    sha.update(bytes.data() + triad::kShardHeaderBytes, bytes.size() - triad::kShardHeaderBytes);
    triad::Digest digest = sha.finish();
    std::memcpy(bytes.data() + 40, digest.data(), digest.size());
    triad::fuzz::write_bytes(path, bytes);
    read_shard(path);
  }
  return 0;
}
