#include "triad/data/reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"
#include "triad/core/error.h"
#include "triad/core/sha256.h"

namespace triad {
namespace {

using testing::fixture;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::write_text;

std::vector<Document> read_all(const std::vector<std::string>& paths) {
  DocumentReader reader(paths, false);
  std::vector<Document> docs;
  while (reader.read_batch(&docs, 1 << 20)) {
  }
  return docs;
}

TEST(Reader, SkipsAndCountsBadLinesWithFileAndLine) {
  std::string path = fixture("fixture/brown_sample.jsonl");
  DocumentReader reader({path}, false);
  std::vector<Document> docs;
  while (reader.read_batch(&docs, 1 << 20)) {
  }
  EXPECT_EQ(docs.size(), 14u);
  EXPECT_EQ(reader.issues().malformed_json, 2u);  // an unterminated object and an array
  EXPECT_EQ(reader.issues().missing_text, 1u);
  EXPECT_EQ(reader.issues().invalid_utf8, 1u);
  ASSERT_EQ(reader.issues().examples.size(), 4u);
  EXPECT_THAT(reader.issues().examples[0], HasSubstr("brown_sample.jsonl:5: malformed JSON"));
  EXPECT_THAT(reader.issues().examples[1], HasSubstr("brown_sample.jsonl:8: missing field \"text\""));
  EXPECT_THAT(reader.issues().examples[2], HasSubstr("brown_sample.jsonl:11: expected a JSON object"));
  EXPECT_THAT(reader.issues().examples[3], HasSubstr("brown_sample.jsonl:18: invalid UTF-8"));
  EXPECT_EQ(docs[0].url, "brown://ca01");
  EXPECT_EQ(docs[0].timestamp, "1961-01-01T00:00:00Z");
  EXPECT_THAT(docs[0].text, ::testing::StartsWith("The Fulton County Grand Jury said Friday"));
  EXPECT_EQ(reader.files()[0].sha256, sha256_file_hex(path));
}

TEST(Reader, StrictModeFailsOnTheFirstBadLine) {
  try {
    DocumentReader reader({fixture("fixture/brown_sample.jsonl")}, true);
    std::vector<Document> docs;
    while (reader.read_batch(&docs, 1 << 20)) {
    }
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("brown_sample.jsonl:5: malformed JSON"));
    EXPECT_EQ(e.exit_code(), 1);
  }
}

TEST(Reader, GzipReadsLikeThePlainFile) {
  TempDir dir;
  write_text(dir / "plain.jsonl",
             "{\"text\": \"one\"}\n{\"text\": \"two\", \"url\": \"u\"}\n{\"text\": \"three\"}");
  ASSERT_EQ(std::system(("gzip -k " + (dir / "plain.jsonl")).c_str()), 0);
  auto plain = read_all({dir / "plain.jsonl"});
  auto gz = read_all({dir / "plain.jsonl.gz"});
  ASSERT_EQ(plain.size(), 3u);  // the last line has no newline and still counts
  ASSERT_EQ(gz.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(plain[i].text, gz[i].text);
  EXPECT_EQ(plain[1].url, "u");
  EXPECT_THAT(gz[0].url, HasSubstr("plain.jsonl.gz:1"));
  EXPECT_EQ(read_all({fixture("fixture/brown_more.jsonl.gz")}).size(), 6u);
}

TEST(Reader, CorruptGzipIsAnError) {
  TempDir dir;
  write_text(dir / "bad.jsonl.gz", std::string("\x1f\x8b\x08\x00garbage-that-is-not-deflate", 30));
  EXPECT_THROW(read_all({dir / "bad.jsonl.gz"}), Error);
}

TEST(Reader, TextFilesSplitOnBlankLines) {
  auto docs = read_all({fixture("fixture/notes.txt")});
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[1].text, "Short block.");
  EXPECT_THAT(docs[2].url, HasSubstr("notes.txt:7"));
  EXPECT_EQ(std::count(docs[0].text.begin(), docs[0].text.end(), '\n'), 2);
}

TEST(Reader, ExpandInputsRejectsMissingAndUnsupportedFiles) {
  TempDir dir;
  write_text(dir / "a.jsonl", "{}\n");
  write_text(dir / "b.txt", "x\n");
  write_text(dir / "c.csv", "x\n");
  EXPECT_EQ(expand_inputs({dir / "*.jsonl", dir / "b.txt"}).size(), 2u);
  EXPECT_EQ(expand_inputs({dir.path()}).size(), 2u);  // a directory: its supported files
  try {
    expand_inputs({dir / "missing.jsonl"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_THAT(e.what(), HasSubstr("missing.jsonl: no such file"));
  }
  EXPECT_THROW(expand_inputs({dir / "c.csv"}), Error);
}

}  // namespace
}  // namespace triad
