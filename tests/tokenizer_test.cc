#include "triad/data/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

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
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--vocab-size 5000 is more than the"));
  }
}

// A long text: the fixture's lines, run together with spaces (some doubled) and newlines.
std::string long_text(size_t bytes) {
  std::string text;
  const std::vector<std::string> lines = fixture_lines();
  for (size_t i = 0; text.size() < bytes; ++i) {
    text += lines[i % lines.size()];
    text += i % 7 == 0 ? "\n" : i % 5 == 0 ? "  " : " ";
  }
  return text;
}

TEST(Tokenizer, EncodingPiecesCutBeforeASpaceOrElseBetweenCharacters) {
  const std::string text = long_text(300'000);
  std::vector<std::string_view> pieces = encoding_pieces(text, 1000);
  EXPECT_GT(pieces.size(), 300u);
  std::string joined;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_LE(pieces[i].size(), 1000u);
    if (i > 0) {
      EXPECT_EQ(pieces[i][0], ' ') << i;
    }
    joined += pieces[i];
  }
  EXPECT_EQ(joined, text);
  std::string cjk;
  while (cjk.size() < 10'000) cjk += "東京タワー🙂";
  joined.clear();
  for (std::string_view piece : encoding_pieces(cjk, 1000)) {
    EXPECT_LE(piece.size(), 1000u);
    EXPECT_NE(static_cast<unsigned char>(piece[0]) & 0xC0, 0x80) << "starts inside a character";
    joined += piece;
  }
  EXPECT_EQ(joined, cjk);
  EXPECT_THAT(encoding_pieces("short", 1000), ::testing::ElementsAre("short"));
}

// The reference is SentencePiece itself, on each piece: a piece after the first starts with a space, which
// SentencePiece's dummy prefix stands for when the piece is encoded without it.
TEST(Tokenizer, ALongTextHasTheIdsSentencePieceGivesEachOfItsPieces) {
  const std::string text = long_text(4 * kEncodePieceBytes);
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(trained().serialized()).ok());
  std::vector<int> expected, piece_ids, ids;
  std::vector<std::string_view> pieces = encoding_pieces(text);
  ASSERT_EQ(pieces.size(), 5u);
  for (size_t i = 0; i < pieces.size(); ++i) {
    ASSERT_TRUE(sp.Encode(i == 0 ? pieces[i] : pieces[i].substr(1), &piece_ids).ok());
    expected.insert(expected.end(), piece_ids.begin(), piece_ids.end());
  }
  trained().encode(text, &ids);
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(trained().decode(ids), text);
}

// Cut before a space, a text keeps the ids of its whole. (Not over many pieces: SentencePiece's float path
// scores, summed over a whole long text, come to resolve near-ties otherwise; here 180 KB in.)
TEST(Tokenizer, ACutBeforeASpaceChangesNoId) {
  const std::string text = long_text(kEncodePieceBytes * 3 / 2);
  ASSERT_EQ(encoding_pieces(text).size(), 2u);
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.LoadFromSerializedProto(trained().serialized()).ok());
  std::vector<int> whole, ids;
  ASSERT_TRUE(sp.Encode(text, &whole).ok());
  trained().encode(text, &ids);
  EXPECT_EQ(ids, whole);
}

TEST(Tokenizer, ALongTextWithoutSpacesIsCutBetweenCharactersAndDecodesToItself) {
  std::string text;
  while (text.size() < 3 * kEncodePieceBytes) text += "東京タワーwithoutspaces🙂\n";
  std::vector<int> ids;
  trained().encode(text, &ids);
  for (int id : ids) ASSERT_NE(id, 0) << "no <unk>";
  EXPECT_EQ(trained().decode(ids), text);
}

}  // namespace
}  // namespace triad
