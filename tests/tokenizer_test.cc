#include "triad/data/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/data/reader.h"

namespace triad {
namespace {

using testing::TempDir;

std::vector<std::string> fixture_lines() {
  DocumentReader reader({testing::fixture("fixture/brown_sample.jsonl")}, false);
  std::vector<Document> docs;
  while (reader.read_batch(&docs, 1 << 20)) {
  }
  std::vector<std::string> lines;
  for (const auto& d : docs) {
    size_t start = 0;
    while (start < d.text.size()) {
      size_t end = std::min(d.text.find('\n', start), d.text.size());
      lines.push_back(d.text.substr(start, end - start));
      start = end + 1;
    }
  }
  return lines;
}

const Tokenizer& trained() {
  static Tokenizer tokenizer =
      Tokenizer::train(fixture_lines(), {.vocab_size = 400, .seed = 7, .threads = 1});
  return tokenizer;
}

TEST(Tokenizer, RoundTripIsExactIncludingNewlinesAndUnseenCharacters) {
  const Tokenizer& t = trained();
  EXPECT_EQ(t.vocab_size(), 400);
  for (std::string text :
       {"The jury said it did find that many of Georgia's laws are outmoded.",
        "two  spaces,\ttab and\nnewline\n\nparagraph", "ünïcödé → 東京 🙂 and digits 12345"}) {
    std::vector<int> ids;
    t.encode(text, &ids);
    EXPECT_FALSE(ids.empty());
    for (int id : ids) EXPECT_NE(id, 0) << "no <unk>: byte fallback covers everything";
    EXPECT_EQ(t.decode(ids), text);
  }
}

TEST(Tokenizer, TrainingIsDeterministicAndSavedModelsReload) {
  Tokenizer again = Tokenizer::train(fixture_lines(), {.vocab_size = 400, .seed = 7, .threads = 1});
  EXPECT_EQ(again.serialized(), trained().serialized());
  TempDir dir;
  write_file_atomic(dir / "t.model", trained().serialized());
  Tokenizer loaded = Tokenizer::load(dir / "t.model");
  std::vector<int> a, b;
  trained().encode("The grand jury commented on a number of other topics.", &a);
  loaded.encode("The grand jury commented on a number of other topics.", &b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(loaded.eos_id(), trained().eos_id());
}

TEST(Tokenizer, BadModelFileIsAnErrorNamingIt) {
  TempDir dir;
  write_file_atomic(dir / "bad.model", "this is not a protobuf");
  try {
    Tokenizer::load(dir / "bad.model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("bad.model"));
  }
  EXPECT_THROW(Tokenizer::load(dir / "missing.model"), Error);
}

// tests/fuzz/corpus/tokenizer/empty_piece.model: a model with an empty piece made SentencePiece's trie
// builder throw its own exception (Darts::Details::Exception), which escaped the wrapper.
TEST(Tokenizer, AModelSentencePieceThrowsOnIsAnErrorNamingIt) {
  const std::string model = std::string(TRIAD_SOURCE_DIR) + "/tests/fuzz/corpus/tokenizer/empty_piece.model";
  try {
    Tokenizer::load(model);
    FAIL() << "loaded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("empty_piece.model: not a SentencePiece model"));
  }
}

TEST(Tokenizer, TooLargeAVocabularyForTheTextIsAClearError) {
  std::vector<std::string> tiny = {"a few words only.", "and a few more."};
  try {
    Tokenizer::train(tiny, {.vocab_size = 5000, .seed = 1, .threads = 1});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("Vocabulary size"));
  }
}

}  // namespace
}  // namespace triad
