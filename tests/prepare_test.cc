// End-to-end: the `triad prepare` command on the fixture corpus, and its errors.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "triad/cli/cli.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/sha256.h"
#include "triad/data/prepare.h"
#include "triad/data/reader.h"
#include "triad/data/sampler.h"
#include "triad/data/tokenizer.h"

namespace triad {
namespace {

using testing::fixture;
using ::testing::HasSubstr;
using testing::RefusedWith;
using testing::run_triad;
using testing::TempDir;

std::string fixture_inputs() {
  return fixture("fixture/brown_sample.jsonl") + " " + fixture("fixture/brown_more.jsonl.gz") + " " +
         fixture("fixture/notes.txt");
}

std::string prepare_args(const std::string& out, const std::string& extra = "") {
  return "prepare -q --input " + fixture_inputs() + " --out " + out +
         " --vocab-size 400 --val-fraction 0.2 " + "--blocklist-file " + fixture("fixture/blocklist.txt") +
         " " + extra;
}

TEST(Prepare, FixtureCorpusEndToEnd) {
  TempDir dir;
  auto r = run_triad(prepare_args(dir / "out", "--threads 2"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto summary = nlohmann::json::parse(r.out);
  auto manifest = nlohmann::json::parse(read_file(dir / "out/manifest.json"));
  const auto& counts = manifest["counts"];
  EXPECT_EQ(counts["documents_read"], 23);  // 14 + 6 JSONL documents, 3 text blocks
  EXPECT_EQ(counts["skipped_lines"]["malformed_json"], 2);
  EXPECT_EQ(counts["skipped_lines"]["missing_text"], 1);
  EXPECT_EQ(counts["skipped_lines"]["invalid_utf8"], 1);
  EXPECT_EQ(counts["documents_removed"]["page_under_3_sentences"], 1);  // the "Short block."
  int kept = counts["documents_kept"];
  EXPECT_EQ(counts["train"]["documents"].get<int>() + counts["val"]["documents"].get<int>(), kept);
  EXPECT_GT(counts["val"]["documents"].get<int>(), 0);
  EXPECT_EQ(summary["documents_kept"], kept);
  ASSERT_EQ(manifest["inputs"].size(), 3u);
  EXPECT_EQ(manifest["inputs"][1]["sha256"], sha256_file_hex(fixture("fixture/brown_more.jsonl.gz")));
  EXPECT_EQ(manifest["tokenizer"]["sha256"], sha256_file_hex(dir / "out/tokenizer.model"));

  // The shards decode back to the cleaned documents, separated by EOS.
  TokenDataset train = TokenDataset::open(dir / "out", "train");
  Tokenizer tokenizer = Tokenizer::load(dir / "out/tokenizer.model");
  EXPECT_EQ(train.vocab_size(), 400u);
  EXPECT_EQ(train.tokens(), counts["train"]["tokens"].get<uint64_t>());
  const ShardReader& shard = *train.shards()[0];
  std::vector<int> first;
  for (uint64_t i = 0; shard.token(i) != train.eos_id(); ++i)
    first.push_back(static_cast<int>(shard.token(i)));
  std::string text = tokenizer.decode(first);
  EXPECT_THAT(text, ::testing::StartsWith("The Fulton County Grand Jury"));
  for (const auto& entry : manifest["shards"]) {
    EXPECT_EQ(entry["sha256"], ShardReader(dir / ("out/" + entry["file"].get<std::string>())).info().sha256);
  }
  // Nothing but the outputs is left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename(), "out");
}

TEST(Prepare, ShardsDoNotDependOnTheThreadCount) {
  TempDir dir;
  ASSERT_EQ(run_triad(prepare_args(dir / "a", "--threads 1")).exit_code, 0);
  auto r = run_triad(prepare_args(dir / "b", "--threads 2 --tokenizer " + (dir / "a/tokenizer.model")));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* f : {"train-00000.tok", "val-00000.tok"}) {
    EXPECT_EQ(sha256_file_hex(dir / (std::string("a/") + f)), sha256_file_hex(dir / (std::string("b/") + f)))
        << f;
  }
}

TEST(Prepare, BlocklistAndCleanFlags) {
  TempDir dir;
  testing::write_text(
      dir / "in.jsonl",
      "{\"text\": \"The weather was fine all day long in the city.\\nWe walked to the park and "
      "sat by the lake.\\nOh darn, the rain came back just as we left the park.\"}\n");
  std::string base = "prepare -q --input " + (dir / "in.jsonl") +
                     " --vocab-size 300 --min-chars 0 --blocklist-file " + fixture("fixture/blocklist.txt");
  auto on = run_triad(base + " --out " + (dir / "on"));
  EXPECT_EQ(on.exit_code, 1);  // the only page is blocklisted: nothing to train on
  EXPECT_THAT(on.err, HasSubstr("no document is left after cleaning"));
  EXPECT_FALSE(std::filesystem::exists(dir / "on"));
  auto off = run_triad(base + " --blocklist off --out " + (dir / "off"));
  EXPECT_EQ(off.exit_code, 0) << off.err;
}

// Peak memory of `prepare` on one document of `bytes`, with a given tokenizer: what the encoding takes.
uint64_t peak_rss_for_one_document(const TempDir& dir, size_t bytes) {
  std::string words;
  while (words.size() < bytes) words += "word ";
  const std::string name = "doc" + std::to_string(bytes);
  testing::write_text(dir / (name + ".jsonl"), "{\"text\": \"" + words + "\"}\n");
  auto r = run_triad("prepare -q --input " + (dir / (name + ".jsonl")) + " --out " + (dir / name) +
                     " --tokenizer " + testing::fixture_data() +
                     "/tokenizer.model --clean none --min-chars 0 --val-fraction 0");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto manifest = nlohmann::json::parse(read_file(dir / (name + "/manifest.json")));
  EXPECT_EQ(manifest["counts"]["train"]["documents_encoded_in_pieces"], bytes > kEncodePieceBytes ? 1 : 0);
  return manifest["peak_rss_bytes"].get<uint64_t>();
}

// SentencePiece holds ~150 bytes per byte of a string it encodes: 8 GB for one 50 MB document, unless
// encode() cuts it.
TEST(Prepare, ALongDocumentTakesMemoryInProportionToItsSize) {
  if (testing::kSanitized) GTEST_SKIP() << "resident memory under AddressSanitizer counts its shadow memory";
  TempDir dir;
  const size_t bytes = 4 << 20;
  const uint64_t base = peak_rss_for_one_document(dir, 100);
  const uint64_t peak = peak_rss_for_one_document(dir, bytes);
  EXPECT_LT(peak, base + 16 * bytes) << "base " << base;
}

TEST(Prepare, ATextFileWithoutBlankLinesIsOneDocumentTheTokenizerLearnsFromByLine) {
  TempDir dir;
  std::string text;
  DocumentReader reader({fixture("fixture/brown_sample.jsonl")}, false);
  std::vector<Document> docs;
  while (reader.read_batch(&docs, 1 << 20)) {
  }
  for (const auto& d : docs) text += d.text + "\n";  // over 16 KB: SentencePiece would skip it as one line
  ASSERT_GT(text.size(), kMaxTrainingLineBytes);
  testing::write_text(dir / "book.txt", text);
  auto r = run_triad("prepare -q --input " + (dir / "book.txt") + " --out " + (dir / "out") +
                     " --clean none --vocab-size 400 --val-fraction 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto manifest = nlohmann::json::parse(read_file(dir / "out/manifest.json"));
  EXPECT_EQ(manifest["counts"]["documents_read"], 1);
  EXPECT_EQ(manifest["tokenizer"]["training_lines"], std::count(text.begin(), text.end(), '\n'));
}

TEST(PrepareCli, AVocabularySmallerThanTheCharactersSaysWhichSizeWouldDo) {
  TempDir dir;
  std::string jsonl;  // 600 different CJK characters: more than 400 pieces can hold
  uint32_t x = 1;
  for (int doc = 0; doc < 100; ++doc) {
    std::string text;
    for (int word = 0; word < 40; ++word) {
      for (int c = 0; c < 4; ++c) {
        x = x * 1103515245 + 12345;
        uint32_t code = 0x4E00 + (x >> 16) % 600;  // three bytes of UTF-8
        text += {static_cast<char>(0xE0 | code >> 12), static_cast<char>(0x80 | (code >> 6 & 0x3F)),
                 static_cast<char>(0x80 | (code & 0x3F))};
      }
      text += word % 10 == 9 ? "\\n" : " ";
    }
    jsonl += "{\"text\": \"" + text + "\"}\n";
  }
  testing::write_text(dir / "cjk.jsonl", jsonl);
  const std::string args = "prepare -q --input " + (dir / "cjk.jsonl") + " --clean none --vocab-size ";
  auto r = run_triad(args + "400 --out " + (dir / "small"));
  EXPECT_EQ(r.exit_code, 1);
  const std::string use = "use --vocab-size ";
  ASSERT_THAT(r.err, HasSubstr("--vocab-size 400 is less than the ")) << r.err;
  ASSERT_THAT(r.err, HasSubstr(use));
  const int enough = std::stoi(r.err.substr(r.err.find(use) + use.size()));
  EXPECT_GT(enough, 600);
  auto ok = run_triad(args + std::to_string(enough) + " --out " + (dir / "enough"));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST(PrepareCli, MissingInputIsAUsageError) {
  TempDir dir;
  auto r = run_triad("prepare --input " + (dir / "nope.jsonl") + " --out " + (dir / "out"));
  EXPECT_THAT(r, RefusedWith("triad: error: --input"));
  EXPECT_THAT(r.err, HasSubstr("nope.jsonl: no such file"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
}

TEST(PrepareCli, UnknownFlagIsAUsageErrorNamingIt) {
  auto r = run_triad("prepare --vocab-sise 10");
  EXPECT_THAT(r, RefusedWith("--vocab-sise"));
  EXPECT_THAT(r.err, ::testing::StartsWith("triad: error:"));
}

TEST(PrepareCli, ExistingOutputDirIsRefusedUnlessForced) {
  TempDir dir;
  ASSERT_EQ(run_triad(prepare_args(dir / "out")).exit_code, 0);
  const std::string before = read_file(dir / "out/manifest.json");
  EXPECT_THAT(run_triad(prepare_args(dir / "out")), RefusedWith("already holds prepared data"));
  EXPECT_EQ(read_file(dir / "out/manifest.json"), before);
  auto forced = run_triad(prepare_args(dir / "out", "--force --seed 7"));
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(read_file(dir / "out/manifest.json"), before);
}

// --force deleted whatever was in --out: a thesis, or the prepared data and a file put beside it.
TEST(PrepareCli, ForceReplacesOnlyPreparedDataHoldingNothingElse) {
  TempDir dir;
  std::filesystem::create_directories(dir / "d");
  testing::write_text(dir / "d/thesis.tex", "x");
  for (const char* force : {"", "--force"}) {
    auto r = run_triad(prepare_args(dir / "d", force));
    EXPECT_THAT(r, RefusedWith("is not prepared data")) << force;
    EXPECT_THAT(r, RefusedWith("it holds thesis.tex")) << force;
    EXPECT_EQ(read_file(dir / "d/thesis.tex"), "x");
  }

  ASSERT_EQ(run_triad(prepare_args(dir / "data")).exit_code, 0);
  testing::write_text(dir / "data/notes.txt", "mine");
  std::filesystem::create_directories(dir / "data/extra");
  auto r = run_triad(prepare_args(dir / "data", "--force"));
  EXPECT_THAT(r, RefusedWith("also holds extra/, notes.txt"));
  EXPECT_EQ(read_file(dir / "data/notes.txt"), "mine");
  EXPECT_TRUE(std::filesystem::exists(dir / "data/train-00000.tok"));
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_THAT(e.path().filename().string(), ::testing::AnyOf("d", "data")) << "debris";
}

// It said "exists and is not a directory"; it must stay refused, with --force too.
TEST(PrepareCli, AFileAsOutIsRefused) {
  TempDir dir;
  testing::write_text(dir / "file", "data");
  for (const char* force : {"", "--force"}) {
    EXPECT_THAT(run_triad(prepare_args(dir / "file", force)), RefusedWith("is a file, not a data directory"))
        << force;
    EXPECT_EQ(read_file(dir / "file"), "data");
  }
}

TEST(PrepareCli, AFailedRunLeavesTheOldOutputAndNoDebris) {
  TempDir dir;
  ASSERT_EQ(run_triad(prepare_args(dir / "out")).exit_code, 0);
  std::string before = read_file(dir / "out/manifest.json");
  auto r = run_triad(prepare_args(dir / "out", "--force --vocab-size 60000"));  // too large for the text
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("tokenizer training failed"));
  EXPECT_EQ(read_file(dir / "out/manifest.json"), before);
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename(), "out");
}

TEST(PrepareCli, ConfigFileSuppliesFlagsAndTheCommandLineWins) {
  TempDir dir;
  testing::write_text(dir / "run.toml", "vocab_size = 350\nval-fraction = 0.2\nblocklist = \"off\"\n");
  auto r = run_triad("prepare -q --config " + (dir / "run.toml") + " --input " + fixture_inputs() +
                     " --out " + (dir / "out") + " --vocab-size 380");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto manifest = nlohmann::json::parse(read_file(dir / "out/manifest.json"));
  EXPECT_EQ(manifest["tokenizer"]["vocab_size"], 380);
  EXPECT_EQ(manifest["split"]["val_fraction"], 0.2);
  EXPECT_EQ(manifest["cleaning"]["blocklist"], "");
}

TEST(PrepareCli, ConfigErrorsNameFileLineAndKey) {
  TempDir dir;
  testing::write_text(dir / "run.toml", "vocab_size = 350\n\nvocab_sise = 3\n");
  auto r = run_triad("prepare --config " + (dir / "run.toml") + " --input x --out y");
  EXPECT_THAT(r, RefusedWith("run.toml:3:1: unknown key 'vocab_sise'"));
  testing::write_text(dir / "bad.toml", "vocab_size = = 3\n");
  r = run_triad("prepare --config " + (dir / "bad.toml") + " --input x --out y");
  EXPECT_THAT(r, RefusedWith("bad.toml:1:"));
  testing::write_text(dir / "type.toml", "vocab_size = \"many\"\n");
  r = run_triad("prepare --config " + (dir / "type.toml") + " --input x --out y");
  EXPECT_THAT(r, RefusedWith("type.toml:1:1: key 'vocab_size'"));
}

// The config's text applied without a file (what tests/fuzz/config_toml_fuzz does), errors as from a file.
TEST(PrepareCli, ConfigTextAppliesToAFreshCommandLine) {
  auto apply = [](const std::string& text) {
    CLI::App root("triad");
    cli::Runner run = cli::add_prepare_command(root);  // owns the values the flags are bound to
    CLI::App* prepare = root.get_subcommand("prepare");
    cli::apply_config_text(*prepare, text, "mem.toml");
    return prepare->get_option("--vocab-size")->as<int>();
  };
  EXPECT_EQ(apply("vocab_size = 350\n"), 350);
  try {
    apply("vocab_size = 350\nvocab_sise = 3\n");
    FAIL() << "an unknown key was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_THAT(e.what(), HasSubstr("mem.toml:2:1: unknown key 'vocab_sise'"));
  }
  EXPECT_THROW(apply("vocab_size = = 3\n"), Error);
  try {  // found by tests/fuzz/config_toml_fuzz: an empty list reached CLI11 with no value to convert
    apply("vocab_size = []\n");
    FAIL() << "an empty list was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("mem.toml:1:1: 'vocab_size' is an empty list"));
  }
}

TEST(Cli, HelpAndVersion) {
  auto help = run_triad("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("prepare"));
  auto sub = run_triad("prepare --help");
  EXPECT_EQ(sub.exit_code, 0);
  EXPECT_THAT(sub.out, HasSubstr("--vocab-size"));
  EXPECT_THAT(sub.out, HasSubstr("8192"));  // defaults are shown
  auto version = run_triad("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, ::testing::StartsWith("triad "));
}

// "triad explain" (before it was a command) said "A subcommand is required"; "triad explain --help" printed
// the top-level help, exit 0.
TEST(Cli, AnUnknownCommandIsNamedWithTheCommands) {
  for (const char* line : {"summarize", "summarize --help", "-q summarize --out x"}) {
    auto r = run_triad(line);
    EXPECT_THAT(
        r,
        RefusedWith(
            "unknown command 'summarize' (the commands: prepare, train, eval, generate, probe, plan, audit, "
            "privacy, classify, predict, fairness, launch, report, explain, search, prune; see 'triad "
            "--help')"))
        << line;
    EXPECT_EQ(r.out, "") << line;
  }
  EXPECT_THAT(run_triad("trian --steps 2"), RefusedWith("unknown command 'trian'; did you mean 'train'?"));
  EXPECT_THAT(run_triad("audit verfy run"),
              RefusedWith("unknown command 'audit verfy'; did you mean 'verify'?"));
  EXPECT_THAT(run_triad("audit verfy run"), RefusedWith("see 'triad audit --help'"));
  // A command's own arguments are not commands.
  EXPECT_THAT(run_triad("audit verify summarize"), RefusedWith("summarize: no audit log"));
}

}  // namespace
}  // namespace triad
