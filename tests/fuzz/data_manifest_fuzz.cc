// Prepared data manifests (data/sampler.h, TokenDataset::open): the input as a data directory's
// manifest.json, beside two small valid shards (train-00000.tok, val-00000.tok). A dataset that opens is
// sampled from, as training would.
#include <vector>

#include "fuzz_util.h"
#include "triad/data/sampler.h"
#include "triad/data/shard.h"

namespace {

void write_shard(const std::string& path, int documents) {
  triad::ShardWriter writer(path, 300, 2);
  for (int d = 0; d < documents; ++d) writer.add_document({5, 6, 7, 8, 9, 10, 11, 12, 13, 299});
  writer.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    const std::string& d = triad::fuzz::scratch_dir();
    write_shard(d + "/train-00000.tok", 4);
    write_shard(d + "/val-00000.tok", 1);
    return d;
  }();
  triad::fuzz::write_bytes(dir + "/manifest.json", triad::fuzz::as_text(data, size));
  for (const char* split : {"train", "val"}) {
    triad::fuzz::expect_clean([&] {
      triad::TokenDataset dataset = triad::TokenDataset::open(dir, split);
      triad::Sampler sampler(dataset, {.seq_len = 4, .seed = 1, .shuffle = true, .rank = 0, .world = 1});
      std::vector<int32_t> batch(2 * 5);
      sampler.next_batch(2, batch.data());
    });
  }
  return 0;
}
