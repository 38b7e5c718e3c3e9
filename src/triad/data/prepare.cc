#include "triad/data/prepare.h"

#include <omp.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>

#include "triad/core/clock.h"
#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/format.h"
#include "triad/core/log.h"
#include "triad/core/memory.h"
#include "triad/core/parallel.h"
#include "triad/core/progress.h"
#include "triad/core/sha256.h"
#include "triad/core/version.h"
#include "triad/data/c4_clean.h"
#include "triad/data/reader.h"
#include "triad/data/shard.h"
#include "triad/data/tokenizer.h"

namespace triad {

namespace fs = std::filesystem;

namespace {

constexpr size_t kBatchBytes = 32 << 20;  // text per parallel batch
const char* kSplits[2] = {"train", "val"};

std::string utc_now_seconds() {
  std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

// Cleaned documents of one split, parked on disk between the cleaning and the encoding pass:
// a sequence of (uint32 length, bytes).
class DocumentSpool {
 public:
  explicit DocumentSpool(std::string path) : path_(std::move(path)) {
    file_ = std::fopen(path_.c_str(), "w+b");
    if (!file_) fail("cannot create {}: {}", path_, errno_text());
  }
  ~DocumentSpool() {
    if (file_) std::fclose(file_);
    std::remove(path_.c_str());
  }
  void add(const std::string& text) {
    uint32_t n = static_cast<uint32_t>(text.size());
    if (std::fwrite(&n, 4, 1, file_) != 1 || std::fwrite(text.data(), 1, n, file_) != n) {
      fail("cannot write {}: {}", path_, errno_text());
    }
    ++documents_;
    bytes_ += n;
  }
  void rewind() { std::rewind(file_); }
  // Reads documents until about max_bytes; false when none are left.
  bool read_batch(std::vector<std::string>* out, size_t max_bytes) {
    out->clear();
    size_t got = 0;
    uint32_t n;
    while (got < max_bytes && std::fread(&n, 4, 1, file_) == 1) {
      std::string text(n, '\0');
      if (std::fread(text.data(), 1, n, file_) != n) fail("{}: short read", path_);
      got += n;
      out->push_back(std::move(text));
    }
    return !out->empty();
  }
  uint64_t documents() const { return documents_; }
  uint64_t bytes() const { return bytes_; }

 private:
  std::string path_;
  FILE* file_ = nullptr;
  uint64_t documents_ = 0, bytes_ = 0;
};

// Keeps a uniform sample of at most `capacity` lines (reservoir sampling, seeded).
class LineSample {
 public:
  LineSample(size_t capacity, uint64_t seed) : capacity_(capacity), rng_(seed) {}
  void add(std::string_view line) {
    ++seen_;
    if (lines_.size() < capacity_) {
      lines_.emplace_back(line);
      return;
    }
    uint64_t j = std::uniform_int_distribution<uint64_t>(0, seen_ - 1)(rng_);
    if (j < capacity_) lines_[j] = line;
  }
  const std::vector<std::string>& lines() const { return lines_; }
  uint64_t seen() const { return seen_; }

 private:
  size_t capacity_;
  std::mt19937_64 rng_;
  std::vector<std::string> lines_;
  uint64_t seen_ = 0;
};

// The tokenizer learns from lines of at most kMaxTrainingLineBytes (SentencePiece skips longer ones, and
// fails when none is left): a page's lines split at newlines (with --clean none a page is one line that
// holds them), longer ones cut at spaces as encode() cuts a long text.
void sample_training_lines(const CleanedPage& page, LineSample* sample) {
  for (std::string_view text : page.lines) {
    while (!text.empty()) {
      const size_t end = std::min(text.find('\n'), text.size());
      std::vector<std::string_view> pieces = encoding_pieces(text.substr(0, end), kMaxTrainingLineBytes);
      for (size_t i = 0; i < pieces.size(); ++i) {
        std::string_view piece = pieces[i];
        // SentencePiece's dummy prefix stands for the space a cut leaves in front.
        if (i > 0 && piece.front() == ' ') piece.remove_prefix(1);
        if (!piece.empty()) sample->add(piece);
      }
      text.remove_prefix(std::min(end + 1, text.size()));
    }
  }
}

void check_options(const PrepareOptions& o) {
  if (o.vocab_size < kMinVocabSize && o.tokenizer.empty()) {
    fail_usage("--vocab-size {} is too small: byte fallback alone needs 259 pieces (use >= {})", o.vocab_size,
               kMinVocabSize);
  }
  if (o.val_fraction < 0 || o.val_fraction >= 1)
    fail_usage("--val-fraction must be in [0, 1), got {}", o.val_fraction);
  if (o.max_tokens < 1) fail_usage("--max-tokens must be positive, got {}", o.max_tokens);
  check_threads(o.threads);
  if (o.out_dir.empty()) fail_usage("--out is required");
}

// What prepare writes in its --out, and nothing else: manifest.json, tokenizer.model and the shards
// {train,val}-NNNNN.tok. (The directory is written under another name and renamed into place when complete,
// so no temporary of ours is ever in it.)
bool is_prepared_data_file(const std::string& name) {
  if (name == "manifest.json" || name == "tokenizer.model") return true;
  for (const char* split : kSplits) {
    const std::string prefix = std::string(split) + "-", suffix = ".tok";
    if (name.size() < prefix.size() + 5 + suffix.size() || !name.starts_with(prefix) ||
        !name.ends_with(suffix))
      continue;
    const std::string_view number(name.data() + prefix.size(), name.size() - prefix.size() - suffix.size());
    if (all_digits(number)) return true;
  }
  return false;
}

// Refuses an --out that publish() may not replace: a file, a directory that is not prepared data, or (with
// --force) prepared data holding anything prepare does not write, so that --force never deletes what
// someone else put there. Nothing is changed when it refuses.
void check_replaceable(const std::string& out_dir, bool force) {
  std::error_code ec;
  const fs::file_status status = fs::status(out_dir, ec);
  if (!fs::exists(status)) return;
  if (!fs::is_directory(status))
    fail_usage("--out {} is a file, not a data directory; choose another --out (nothing was changed)",
               out_dir);
  if (fs::is_empty(out_dir, ec)) return;
  const std::vector<std::string> all = directory_listing(out_dir);
  if (!has_json_format((fs::path(out_dir) / "manifest.json").string(), "triad-prepared-data")) {
    fail_usage(
        "--out {} already exists and is not prepared data (no manifest.json of format "
        "\"triad-prepared-data\"; it holds {}); choose another --out{}",
        out_dir, some_of(all), force ? " (--force replaces only prepared data; nothing was deleted)" : "");
  }
  if (!force) {
    fail_usage("--out {} already holds prepared data; choose another --out, or pass --force to replace it",
               out_dir);
  }
  std::vector<std::string> foreign;
  std::copy_if(all.begin(), all.end(), std::back_inserter(foreign),
               [](const std::string& name) { return !is_prepared_data_file(name); });
  if (!foreign.empty()) {
    fail_usage(
        "--force replaces only what triad wrote, and {} also holds {}; move them away or choose another "
        "--out (nothing was deleted)",
        out_dir, some_of(foreign));
  }
}

// Moves the finished staging directory to out_dir, replacing what was there: nothing, an empty directory
// or prepared data (checked again here, as the directory may have changed while prepare ran).
void publish(const std::string& staging, const std::string& out_dir, bool force) {
  check_replaceable(out_dir, force);
  std::error_code ec;
  std::string old;
  if (fs::exists(out_dir, ec)) {
    old = fmt::format("{}.old-{}", out_dir, getpid());
    fs::rename(out_dir, old, ec);
    if (ec) fail("cannot move {} aside: {}", out_dir, ec.message());
  }
  fs::rename(staging, out_dir, ec);
  if (ec) fail("cannot rename {} to {}: {}", staging, out_dir, ec.message());
  fsync_dir(fs::path(out_dir).parent_path().string());
  if (!old.empty()) fs::remove_all(old, ec);
}

struct Pass1Result {
  RuleCounts counts;
  uint64_t documents_read = 0, documents_kept = 0;
  double read_seconds = 0, clean_seconds = 0;
};

// Reads, cleans, deduplicates and splits; parks the kept documents in the spools and samples tokenizer
// training lines from the training split.
Pass1Result read_and_clean(DocumentReader& reader, const PrepareOptions& options, const Blocklist* blocklist,
                           DocumentSpool* spools[2], LineSample* sample) {
  Pass1Result result;
  CleanOptions clean{options.clean_c4, blocklist, options.min_chars};
  SpanDeduper deduper;
  Progress progress("clean", reader.total_bytes());
  std::vector<Document> batch;
  std::vector<CleanedPage> pages;
  uint64_t bytes_reported = 0;
  for (;;) {
    batch.clear();
    auto t0 = std::chrono::steady_clock::now();
    bool more = reader.read_batch(&batch, kBatchBytes);
    result.read_seconds += seconds_since(t0);
    if (!more) break;
    auto t1 = std::chrono::steady_clock::now();
    pages.assign(batch.size(), CleanedPage{});
    std::vector<RuleCounts> thread_counts(static_cast<size_t>(options.threads));
#pragma omp parallel for schedule(dynamic, 16) num_threads(options.threads)
    for (size_t i = 0; i < batch.size(); ++i) {
      pages[i] = clean_page(batch[i].text, clean, &thread_counts[static_cast<size_t>(omp_get_thread_num())]);
    }
    for (const auto& c : thread_counts) result.counts.add(c);
    for (auto& page : pages) {
      if (clean.c4) deduper.apply(&page, &result.counts);
      apply_min_chars(&page, clean, &result.counts);
      if (!page.kept) continue;
      std::string text = page.text();
      bool val = is_validation_document(text, options.val_fraction);
      spools[val]->add(text);
      if (!val && sample) sample_training_lines(page, sample);
      ++result.documents_kept;
    }
    result.clean_seconds += seconds_since(t1);
    result.documents_read += batch.size();
    progress.add(batch.size(), reader.bytes_read() - bytes_reported);
    bytes_reported = reader.bytes_read();
  }
  progress.finish();
  return result;
}

struct EncodeResult {
  std::vector<ShardInfo> shards;
  uint64_t tokens = 0, documents = 0, bytes = 0;
  uint64_t encoded_in_pieces = 0;  // documents over kEncodePieceBytes (see encoding_pieces)
  double seconds = 0;
};

EncodeResult encode_split(DocumentSpool& spool, const char* split, const Tokenizer& tokenizer,
                          const std::string& staging, const PrepareOptions& options) {
  EncodeResult result;
  auto t0 = std::chrono::steady_clock::now();
  spool.rewind();
  Progress progress(std::string("encode ") + split, spool.bytes());
  std::unique_ptr<ShardWriter> writer;
  auto shard_path = [&](size_t index) {
    return (fs::path(staging) / fmt::format("{}-{:05}.tok", split, index)).string();
  };
  std::vector<std::string> batch;
  std::vector<std::vector<int>> ids;
  while (spool.read_batch(&batch, kBatchBytes)) {
    ids.resize(batch.size());
#pragma omp parallel for schedule(dynamic, 8) num_threads(options.threads)
    for (size_t i = 0; i < batch.size(); ++i) tokenizer.encode(batch[i], &ids[i]);
    uint64_t bytes = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!writer)
        writer = std::make_unique<ShardWriter>(shard_path(result.shards.size()), tokenizer.vocab_size(),
                                               tokenizer.eos_id());
      writer->add_document(ids[i]);
      result.tokens += ids[i].size() + 1;
      bytes += batch[i].size();
      result.encoded_in_pieces += batch[i].size() > kEncodePieceBytes;
      if (writer->tokens() >= options.shard_tokens)
        result.shards.push_back(std::exchange(writer, nullptr)->finish());
    }
    result.documents += batch.size();
    result.bytes += bytes;
    progress.add(batch.size(), bytes);
  }
  if (writer) result.shards.push_back(writer->finish());
  progress.finish();
  result.seconds = seconds_since(t0);
  return result;
}

nlohmann::json split_counts(const EncodeResult& e) {
  return {{"documents", e.documents},
          {"tokens", e.tokens},
          {"bytes", e.bytes},
          {"documents_encoded_in_pieces", e.encoded_in_pieces}};
}

nlohmann::json shard_entry(const ShardInfo& info, const char* split) {
  return {{"file", fs::path(info.path).filename().string()},
          {"split", split},
          {"tokens", info.tokens},
          {"documents", info.documents},
          {"token_bytes", info.token_bytes},
          {"sha256", info.sha256}};
}

nlohmann::json build_and_publish(const PrepareOptions& options, const std::string& staging) {
  auto start = std::chrono::steady_clock::now();
  nlohmann::json manifest;
  manifest["format"] = "triad-prepared-data";
  manifest["format_version"] = 1;
  manifest["triad_version"] = kVersion;
  manifest["created_utc"] = utc_now_seconds();

  std::vector<std::string> paths = expand_inputs(options.inputs);
  std::unique_ptr<Blocklist> blocklist;
  if (options.clean_c4 && options.blocklist)
    blocklist = std::make_unique<Blocklist>(Blocklist::load(options.blocklist_path));

  DocumentReader reader(paths, options.strict);
  DocumentSpool train_spool((fs::path(staging) / "train.spool").string());
  DocumentSpool val_spool((fs::path(staging) / "val.spool").string());
  DocumentSpool* spools[2] = {&train_spool, &val_spool};
  std::unique_ptr<LineSample> sample;
  if (options.tokenizer.empty())
    sample = std::make_unique<LineSample>(options.tokenizer_sentences, options.seed);
  log_info("prepare: {} input files, {:.1f} MB", paths.size(), reader.total_bytes() / 1e6);
  Pass1Result pass1 = read_and_clean(reader, options, blocklist.get(), spools, sample.get());
  if (pass1.documents_kept == 0) fail("no document is left after cleaning ({} read)", pass1.documents_read);
  if (train_spool.documents() == 0) fail("no document landed in the training split");

  auto t_tok = std::chrono::steady_clock::now();
  Tokenizer tokenizer =
      options.tokenizer.empty()
          ? Tokenizer::train(sample->lines(),
                             {options.vocab_size, static_cast<uint32_t>(options.seed), options.threads})
          : Tokenizer::load(options.tokenizer);
  if (options.tokenizer.empty())
    log_info("tokenizer: trained {} pieces on {} lines in {:.1f}s", tokenizer.vocab_size(),
             sample->lines().size(), seconds_since(t_tok));
  write_file_atomic((fs::path(staging) / "tokenizer.model").string(), tokenizer.serialized());
  double tokenizer_seconds = seconds_since(t_tok);

  EncodeResult encoded[2];
  nlohmann::json shards = nlohmann::json::array();
  for (int s = 0; s < 2; ++s) {
    if (spools[s]->documents() == 0) continue;
    encoded[s] = encode_split(*spools[s], kSplits[s], tokenizer, staging, options);
    for (const auto& info : encoded[s].shards) shards.push_back(shard_entry(info, kSplits[s]));
  }

  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& f : reader.files())
    inputs.push_back({{"path", f.path}, {"bytes", f.bytes}, {"sha256", f.sha256}});
  manifest["inputs"] = inputs;
  nlohmann::json removed_pages, removed_lines;
  for (int r = 0; r < kRuleCount; ++r) {
    Rule rule = static_cast<Rule>(r);
    (is_line_rule(rule) ? removed_lines : removed_pages)[rule_name(rule)] = pass1.counts[rule];
  }
  const InputIssues& issues = reader.issues();
  manifest["counts"] = {
      {"documents_read", pass1.documents_read},
      {"skipped_lines",
       {{"malformed_json", issues.malformed_json},
        {"missing_text", issues.missing_text},
        {"invalid_utf8", issues.invalid_utf8}}},
      {"skipped_examples", issues.examples},
      {"documents_removed", removed_pages},
      {"lines_removed", removed_lines},
      {"documents_kept", pass1.documents_kept},
      {"train", split_counts(encoded[0])},
      {"val", split_counts(encoded[1])},
  };
  manifest["cleaning"] = {{"recipe", options.clean_c4 ? "c4" : "none"},
                          {"blocklist", blocklist ? options.blocklist_path : ""},
                          {"blocklist_sha256", blocklist ? sha256_file_hex(options.blocklist_path) : ""},
                          {"min_chars", options.min_chars}};
  manifest["tokenizer"] = {{"file", "tokenizer.model"},
                           {"sha256", sha256_hex(tokenizer.serialized())},
                           {"source", options.tokenizer.empty() ? "trained" : options.tokenizer},
                           {"vocab_size", tokenizer.vocab_size()},
                           {"eos_id", tokenizer.eos_id()},
                           {"model_type", "unigram"},
                           {"training_lines", sample ? sample->lines().size() : 0},
                           {"training_lines_seen", sample ? sample->seen() : 0},
                           {"training_threads", sample ? options.threads : 0}};
  manifest["split"] = {{"val_fraction", options.val_fraction}, {"by", "xxh3_64(text)"}};
  manifest["max_tokens"] = options.max_tokens;
  manifest["seed"] = options.seed;
  manifest["threads"] = options.threads;
  manifest["shards"] = shards;
  double total = seconds_since(start);
  manifest["timings_s"] = {{"read_parse", pass1.read_seconds},
                           {"clean", pass1.clean_seconds},
                           {"tokenizer", tokenizer_seconds},
                           {"encode", encoded[0].seconds + encoded[1].seconds},
                           {"total", total}};
  manifest["peak_rss_bytes"] = peak_rss_bytes();
  write_file_atomic((fs::path(staging) / "manifest.json").string(), manifest.dump(2) + "\n");
  return manifest;
}

}  // namespace

bool is_validation_document(std::string_view text, double val_fraction) {
  uint64_t h = XXH3_64bits(text.data(), text.size());
  return static_cast<double>(h >> 11) * 0x1.0p-53 < val_fraction;
}

nlohmann::json run_prepare(const PrepareOptions& options) {
  check_options(options);
  std::string out = fs::path(options.out_dir).lexically_normal().string();
  if (!out.empty() && out.back() == '/') out.pop_back();
  check_replaceable(out, options.force);
  if (fs::path(out).has_parent_path()) make_dirs(fs::path(out).parent_path().string());
  std::string staging = fmt::format("{}.partial-{}", out, getpid());
  make_dirs(staging);
  try {
    nlohmann::json manifest = build_and_publish(options, staging);
    publish(staging, out, options.force);
    return manifest;
  } catch (...) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    throw;
  }
}

}  // namespace triad
