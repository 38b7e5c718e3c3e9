#include "triad/data/sampler.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad {
namespace {

using testing::TempDir;

// Two training shards whose token i is (i % 997) + 3, so every window's content tells where it came from.
void write_dataset(const TempDir& dir, uint64_t tokens_a, uint64_t tokens_b) {
  nlohmann::json shards = nlohmann::json::array();
  int counter = 0;
  for (auto [name, n] : {std::pair{"train-00000.tok", tokens_a}, std::pair{"train-00001.tok", tokens_b}}) {
    ShardWriter writer(dir / name, 1000, 2);
    std::vector<int> doc;
    for (uint64_t i = 0; i + 1 < n; ++i) doc.push_back(counter++ % 997 + 3);
    writer.add_document(doc);  // + EOS
    writer.finish();
    shards.push_back({{"file", name}, {"split", "train"}});
  }
  write_file_atomic(dir / "manifest.json", nlohmann::json{{"shards", shards}}.dump());
}

std::vector<int32_t> batch(Sampler& s, int global_batch, int rows, int seq_len) {
  std::vector<int32_t> out(static_cast<size_t>(rows) * (seq_len + 1));
  s.next_batch(global_batch, out.data());
  return out;
}

TEST(Sampler, EachEpochVisitsEveryWindowOnceInASeededOrder) {
  TempDir dir;
  write_dataset(dir, 1000, 700);
  TokenDataset data = TokenDataset::open(dir.path(), "train");
  Sampler a(data, {.seq_len = 16, .seed = 1});
  Sampler b(data, {.seq_len = 16, .seed = 2});
  ASSERT_EQ(a.windows_per_epoch(), 999u / 16 + 699u / 16);
  for (uint64_t epoch = 0; epoch < 3; ++epoch) {
    std::set<uint64_t> seen;
    for (uint64_t i = 0; i < a.windows_per_epoch(); ++i) seen.insert(a.window_at(epoch, i));
    EXPECT_EQ(seen.size(), a.windows_per_epoch());
    EXPECT_EQ(*seen.rbegin(), a.windows_per_epoch() - 1);
  }
  std::vector<uint64_t> order_a, order_b, order_a1;
  for (uint64_t i = 0; i < a.windows_per_epoch(); ++i) {
    order_a.push_back(a.window_at(0, i));
    order_b.push_back(b.window_at(0, i));
    order_a1.push_back(a.window_at(1, i));
  }
  EXPECT_NE(order_a, order_b);   // the seed matters
  EXPECT_NE(order_a, order_a1);  // and so does the epoch
}

// tests/fuzz/corpus/data_manifest/bad_types.json: a "split" that was not a string escaped as nlohmann's
// type_error, without the manifest's name.
TEST(Sampler, AShardsEntryOfTheWrongShapeIsAnErrorNamingTheManifest) {
  TempDir dir;
  write_dataset(dir, 100, 100);
  for (const char* shards : {R"([{"file": "train-00000.tok", "split": ["train"]}])", R"([3])",
                             R"([{"file": 7, "split": "train"}])", R"([null])"}) {
    write_file_atomic(dir / "manifest.json", std::string(R"({"shards": )") + shards + "}");
    try {
      TokenDataset::open(dir.path(), "train");
      ADD_FAILURE() << shards << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("manifest.json: shards[0] is not an object"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Sampler, WindowsHoldConsecutiveTokens) {
  TempDir dir;
  write_dataset(dir, 1000, 700);
  TokenDataset data = TokenDataset::open(dir.path(), "train");
  Sampler s(data, {.seq_len = 16, .seed = 5});
  auto rows = batch(s, 8, 8, 16);
  for (int r = 0; r < 8; ++r) {
    for (int t = 1; t < 16; ++t) {  // shard contents are (i % 997) + 3: consecutive unless wrapping or EOS
      int32_t prev = rows[r * 17 + t - 1], cur = rows[r * 17 + t];
      EXPECT_TRUE(cur == prev + 1 || cur == 3 || cur == 2) << prev << " -> " << cur;
    }
  }
}

TEST(Sampler, RanksSplitTheGlobalBatchExactly) {
  TempDir dir;
  write_dataset(dir, 1000, 700);
  TokenDataset data = TokenDataset::open(dir.path(), "train");
  Sampler whole(data, {.seq_len = 8, .seed = 3});
  Sampler r0(data, {.seq_len = 8, .seed = 3, .rank = 0, .world = 2});
  Sampler r1(data, {.seq_len = 8, .seed = 3, .rank = 1, .world = 2});
  for (int step = 0; step < 50; ++step) {  // 50 x 12 windows: several epochs
    auto all = batch(whole, 12, 12, 8);
    auto a = batch(r0, 12, 6, 8);
    auto b = batch(r1, 12, 6, 8);
    a.insert(a.end(), b.begin(), b.end());
    ASSERT_EQ(a, all) << "step " << step;
  }
  EXPECT_GT(whole.state().epoch, 0u);
  EXPECT_THROW(batch(r0, 7, 3, 8), Error);  // 7 does not split over 2 ranks
}

TEST(Sampler, SavedPositionResumesTheExactSequence) {
  TempDir dir;
  write_dataset(dir, 1000, 700);
  TokenDataset data = TokenDataset::open(dir.path(), "train");
  Sampler s(data, {.seq_len = 16, .seed = 9});
  for (int i = 0; i < 13; ++i) batch(s, 5, 5, 16);
  SamplerState saved = s.state();
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < 20; ++i) expected.push_back(batch(s, 5, 5, 16));

  Sampler resumed(data, {.seq_len = 16, .seed = 9});
  resumed.restore(saved);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(batch(resumed, 5, 5, 16), expected[i]) << i;
}

TEST(Sampler, UnshuffledReadsWindowsInOrder) {
  TempDir dir;
  write_dataset(dir, 1000, 700);
  TokenDataset data = TokenDataset::open(dir.path(), "train");
  Sampler s(data, {.seq_len = 10, .shuffle = false});
  auto rows = batch(s, 2, 2, 10);
  EXPECT_EQ(rows[0], 3);
  EXPECT_EQ(rows[11], 13);  // the second window starts 10 tokens later
}

TEST(Sampler, ErrorsNameTheProblem) {
  TempDir dir;
  EXPECT_THROW(TokenDataset::open(dir.path(), "train"), Error);  // no manifest
  write_dataset(dir, 20, 20);
  TokenDataset data = TokenDataset::open(dir.path(), "train");
  EXPECT_THROW(Sampler(data, {.seq_len = 64}), Error);  // no shard holds 65 tokens
  EXPECT_THROW(TokenDataset::open(dir.path(), "val"), Error);
}

}  // namespace
}  // namespace triad
