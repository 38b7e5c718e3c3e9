#include "triad/data/shard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"

namespace triad {
namespace {

using testing::TempDir;

std::vector<std::vector<int>> random_documents(int vocab, int count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int>> docs(static_cast<size_t>(count));
  for (auto& d : docs) {
    d.resize(rng() % 50 + 1);
    for (auto& t : d) t = static_cast<int>(rng() % static_cast<uint32_t>(vocab - 1)) + 1;
  }
  return docs;
}

void flip_byte(const std::string& path, long offset) {
  FILE* f = std::fopen(path.c_str(), "r+b");
  std::fseek(f, offset, SEEK_SET);
  int c = std::fgetc(f);
  std::fseek(f, offset, SEEK_SET);
  std::fputc(c ^ 0x01, f);
  std::fclose(f);
}

class ShardRoundTrip : public ::testing::TestWithParam<int> {};

TEST_P(ShardRoundTrip, ReadsBackWhatWasWritten) {
  const int vocab = GetParam();
  const int eos = 2;
  TempDir dir;
  auto docs = random_documents(vocab, 40, 11);
  ShardWriter writer(dir / "s.tok", static_cast<uint32_t>(vocab), eos);
  for (const auto& d : docs) writer.add_document(d);
  ShardInfo written = writer.finish();

  ShardReader reader(dir / "s.tok");
  EXPECT_EQ(reader.info().token_bytes, vocab <= 65536 ? 2u : 4u);
  EXPECT_EQ(reader.info().documents, 40u);
  EXPECT_EQ(reader.info().sha256, written.sha256);
  std::vector<int32_t> all(reader.size());
  reader.copy(0, all.size(), all.data());
  size_t i = 0;
  for (const auto& d : docs) {
    for (int t : d) ASSERT_EQ(all[i++], t);
    ASSERT_EQ(all[i++], eos);
  }
  EXPECT_EQ(i, all.size());
}

INSTANTIATE_TEST_SUITE_P(Shard, ShardRoundTrip, ::testing::Values(300, 65536, 100000));

TEST(Shard, AFlippedPayloadByteIsDetected) {
  TempDir dir;
  ShardWriter writer(dir / "s.tok", 1000, 2);
  for (const auto& d : random_documents(1000, 10, 3)) writer.add_document(d);
  writer.finish();
  flip_byte(dir / "s.tok", kShardHeaderBytes + 17);
  try {
    ShardReader reader(dir / "s.tok");
    FAIL() << "corruption not detected";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("s.tok: checksum mismatch"));
  }
}

TEST(Shard, BadMagicAndTruncationAreDetected) {
  TempDir dir;
  ShardWriter writer(dir / "s.tok", 1000, 2);
  for (const auto& d : random_documents(1000, 10, 3)) writer.add_document(d);
  writer.finish();
  std::filesystem::copy_file(dir / "s.tok", dir / "t.tok");
  flip_byte(dir / "s.tok", 0);
  EXPECT_THROW(ShardReader(dir / "s.tok"), Error);
  std::filesystem::resize_file(dir / "t.tok", std::filesystem::file_size(dir / "t.tok") - 2);
  EXPECT_THROW(ShardReader(dir / "t.tok"), Error);
}

// A token count of 2^63 + 3 at 2 bytes a token wrapped the expected size round to the file's 134 bytes, the
// checksum of those 6 payload bytes matched, and reading the shard's tokens ran off the end of the mapping
// (tests/fuzz/corpus/shard_header/overflow_token_count.tok).
TEST(Shard, ATokenCountThatOverflowsTheFileSizeIsRefused) {
  TempDir dir;
  const uint16_t payload[3] = {5, 6, 2};
  Sha256 sha;
  sha.update(payload, sizeof payload);
  const Digest digest = sha.finish();
  std::string bytes(kShardHeaderBytes, '\0');
  const uint32_t version = kShardVersion, token_bytes = 2, vocab = 300, eos = 2;
  const uint64_t tokens = (uint64_t{1} << 63) + 3, documents = 1;
  std::memcpy(bytes.data(), kShardMagic, sizeof kShardMagic);
  std::memcpy(bytes.data() + 8, &version, 4);
  std::memcpy(bytes.data() + 12, &token_bytes, 4);
  std::memcpy(bytes.data() + 16, &tokens, 8);
  std::memcpy(bytes.data() + 24, &documents, 8);
  std::memcpy(bytes.data() + 32, &vocab, 4);
  std::memcpy(bytes.data() + 36, &eos, 4);
  std::memcpy(bytes.data() + 40, digest.data(), digest.size());
  bytes.append(reinterpret_cast<const char*>(payload), sizeof payload);
  testing::write_text(dir / "s.tok", bytes);
  try {
    ShardReader reader(dir / "s.tok");
    FAIL() << "a shard promising " << reader.size() << " tokens in 134 bytes was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("s.tok: truncated or padded: 134 bytes"));
  }
}

// Only the model refused such a token, with "token id 60000 is outside the model's vocabulary of 400" and no
// file named.
TEST(Shard, ATokenOutsideTheVocabularyNamesTheShard) {
  TempDir dir;
  ShardWriter writer(dir / "s.tok", 1000, 2);
  writer.add_document({5, 700, 9});
  writer.finish();
  // The header says 400 (it is outside the checksum, which covers the payload).
  FILE* f = std::fopen((dir / "s.tok").c_str(), "r+b");
  const uint32_t vocab = 400;
  std::fseek(f, 32, SEEK_SET);
  std::fwrite(&vocab, sizeof vocab, 1, f);
  std::fclose(f);
  try {
    ShardReader reader(dir / "s.tok");
    FAIL() << "a token outside the vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(dir / "s.tok: token 700 at position 1 is outside the shard's "
                                                     "vocabulary of 400"));
  }
}

// The same in prepared data, its checksum recomputed: training named no file.
TEST(Shard, TrainingOnATokenOutsideTheVocabularyNamesTheShard) {
  TempDir dir;
  std::filesystem::copy(testing::fixture_data(), dir / "data");
  const std::string shard = dir / "data/train-00000.tok";
  std::string bytes = read_file(shard);
  const uint16_t token = 60000;
  std::memcpy(bytes.data() + kShardHeaderBytes + 2 * 10, &token, sizeof token);
  Sha256 sha;
  sha.update(bytes.data() + kShardHeaderBytes, bytes.size() - kShardHeaderBytes);
  const Digest digest = sha.finish();
  std::memcpy(bytes.data() + 40, digest.data(), digest.size());
  testing::write_text(shard, bytes);
  auto r = testing::run_triad(
      testing::tiny_train_args(dir / "run", "--steps 1 --eval-every 0 --data " + (dir / "data")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err,
              ::testing::HasSubstr("train-00000.tok: token 60000 at position 10 is outside the shard's "
                                   "vocabulary of 400"));
}

TEST(Shard, AnUnfinishedWriterLeavesNoFile) {
  TempDir dir;
  {
    ShardWriter writer(dir / "s.tok", 1000, 2);
    writer.add_document({5, 6, 7});
  }  // destroyed without finish(), as when an exception unwinds
  EXPECT_FALSE(std::filesystem::exists(dir / "s.tok"));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace triad
