#include "triad/data/reader.h"

#include <glob.h>
#include <simdjson.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"
#include "triad/core/log.h"
#include "triad/core/sha256.h"

namespace triad {

namespace {

std::string_view strip_gz(std::string_view path) {
  return path.ends_with(".gz") ? path.substr(0, path.size() - 3) : path;
}

bool is_jsonl(std::string_view path) {
  auto p = strip_gz(path);
  return p.ends_with(".jsonl") || p.ends_with(".json");
}
bool is_text(std::string_view path) {
  return strip_gz(path).ends_with(".txt");
}
bool is_supported(std::string_view path) {
  return is_jsonl(path) || is_text(path);
}

}  // namespace

std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (const auto& pattern : patterns) {
    std::error_code ec;
    if (fs::is_directory(pattern, ec)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::directory_iterator(pattern, ec)) {
        if (entry.is_regular_file() && is_supported(entry.path().string()))
          found.push_back(entry.path().string());
      }
      if (found.empty())
        fail_usage("--input {}: directory has no .jsonl, .jsonl.gz, .txt or .txt.gz files", pattern);
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
      continue;
    }
    glob_t g{};
    int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    std::vector<std::string> matched(g.gl_pathv, g.gl_pathv + (rc == 0 ? g.gl_pathc : 0));
    globfree(&g);
    if (matched.empty()) fail_usage("--input {}: no such file", pattern);
    for (const auto& path : matched) {
      if (fs::is_directory(path, ec)) continue;
      if (!is_supported(path))
        fail_usage("--input {}: unsupported file type (expected .jsonl, .jsonl.gz, .txt or .txt.gz)", path);
      out.push_back(path);
    }
  }
  return out;
}

// Lines of one file, decompressing gzip transparently and hashing the stored bytes on the way.
class DocumentReader::LineSource {
 public:
  explicit LineSource(const std::string& path) : path_(path) {
    file_ = std::fopen(path.c_str(), "rb");
    if (!file_) fail("cannot open {}: {}", path, errno_text());
    raw_.resize(1 << 20);
  }
  ~LineSource() {
    if (file_) std::fclose(file_);
    if (gzip_) inflateEnd(&zs_);
  }

  // The next line without its "\n" (and "\r"); false at the end of the file.
  bool next(std::string* line) {
    line->clear();
    bool any = false;
    for (;;) {
      if (pos_ == out_.size() && !fill()) {
        if (!any) return false;
        break;  // the last line has no "\n"
      }
      any = true;
      auto begin = out_.begin() + static_cast<long>(pos_);
      auto nl = std::find(begin, out_.end(), '\n');
      line->append(begin, nl);
      if (nl != out_.end()) {
        pos_ = static_cast<size_t>(nl - out_.begin()) + 1;
        break;
      }
      pos_ = out_.size();
    }
    ++line_number_;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return true;
  }

  uint64_t line_number() const { return line_number_; }
  uint64_t raw_bytes() const { return raw_bytes_; }
  std::string digest() { return hex(sha_.finish()); }

 private:
  // Refills out_ with the next decoded bytes; false at the end of the file.
  bool fill() {
    out_.clear();
    pos_ = 0;
    while (out_.empty()) {
      if (gzip_ && zs_.avail_in > 0) {
        inflate_some();
        continue;
      }
      size_t n = std::fread(raw_.data(), 1, raw_.size(), file_);
      if (n == 0) {
        if (std::ferror(file_)) fail("cannot read {}: {}", path_, errno_text());
        if (gzip_ && !stream_end_) fail("{}: truncated gzip stream", path_);
        return false;
      }
      sha_.update(raw_.data(), n);
      if (raw_bytes_ == 0 && n >= 2 && raw_[0] == '\x1f' && static_cast<uint8_t>(raw_[1]) == 0x8b)
        start_gzip();
      raw_bytes_ += n;
      if (!gzip_) {
        out_.assign(raw_.data(), n);
      } else {
        zs_.next_in = reinterpret_cast<Bytef*>(raw_.data());
        zs_.avail_in = static_cast<uInt>(n);
      }
    }
    return true;
  }

  void start_gzip() {
    gzip_ = true;
    if (inflateInit2(&zs_, 15 + 32) != Z_OK) fail("{}: zlib init failed", path_);
  }

  void inflate_some() {
    if (stream_end_) {  // another gzip member follows (concatenated .gz files)
      inflateReset(&zs_);
      stream_end_ = false;
    }
    char buffer[1 << 16];
    zs_.next_out = reinterpret_cast<Bytef*>(buffer);
    zs_.avail_out = sizeof buffer;
    int rc = inflate(&zs_, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      fail("{}: corrupt gzip data ({})", path_, zs_.msg ? zs_.msg : "zlib error");
    }
    stream_end_ = rc == Z_STREAM_END;
    out_.append(buffer, sizeof buffer - zs_.avail_out);
  }

  std::string path_;
  FILE* file_ = nullptr;
  std::string raw_, out_;
  size_t pos_ = 0;
  uint64_t line_number_ = 0, raw_bytes_ = 0;
  bool gzip_ = false, stream_end_ = false;
  z_stream zs_{};
  Sha256 sha_;
};

struct DocumentReader::Json {
  simdjson::dom::parser parser;
  std::string line;
};

DocumentReader::DocumentReader(std::vector<std::string> paths, bool strict)
    : paths_(std::move(paths)), strict_(strict), json_(std::make_unique<Json>()) {
  for (const auto& p : paths_) {
    files_.push_back({p, file_size(p), ""});
    total_bytes_ += files_.back().bytes;
  }
}

DocumentReader::~DocumentReader() = default;

uint64_t DocumentReader::bytes_read() const {
  return bytes_done_ + (source_ ? source_->raw_bytes() : 0);
}

void DocumentReader::report(uint64_t* counter, const std::string& why) {
  std::string where = fmt::format("{}:{}", paths_[next_file_ - 1], source_->line_number());
  if (strict_) fail("{}: {} (--strict)", where, why);
  ++*counter;
  if (issues_.examples.size() < InputIssues::kMaxExamples) {
    issues_.examples.push_back(fmt::format("{}: {}", where, why));
    log_warn("{}: {}; skipped", where, why);
  }
}

bool DocumentReader::read_batch(std::vector<Document>* out, size_t max_bytes) {
  const size_t before = out->size();
  size_t added = 0;
  Document doc;
  while (added < max_bytes) {
    if (!next_document(&doc)) return out->size() > before;
    added += doc.text.size();
    out->push_back(std::move(doc));
  }
  return true;
}

bool DocumentReader::next_document(Document* doc) {
  for (;;) {
    if (source_) {
      if (source_is_text_ ? next_text_document(doc) : next_jsonl_document(doc)) return true;
      files_[next_file_ - 1].sha256 = source_->digest();
      bytes_done_ += source_->raw_bytes();
      source_.reset();
    }
    if (next_file_ == paths_.size()) return false;
    source_ = std::make_unique<LineSource>(paths_[next_file_]);
    source_is_text_ = is_text(paths_[next_file_]);
    ++next_file_;
  }
}

bool DocumentReader::next_jsonl_document(Document* doc) {
  std::string& line = json_->line;
  while (source_->next(&line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    size_t length = line.size();
    line.resize(length + simdjson::SIMDJSON_PADDING);
    simdjson::dom::element root;
    auto error = json_->parser.parse(line.data(), length, false).get(root);
    if (error == simdjson::UTF8_ERROR) {
      report(&issues_.invalid_utf8, "invalid UTF-8");
      continue;
    }
    if (error) {
      report(&issues_.malformed_json, fmt::format("malformed JSON ({})", simdjson::error_message(error)));
      continue;
    }
    simdjson::dom::object object;
    if (root.get(object)) {
      report(&issues_.malformed_json, "expected a JSON object");
      continue;
    }
    std::string_view text;
    auto text_field = object["text"];
    if (text_field.error() == simdjson::NO_SUCH_FIELD) {
      report(&issues_.missing_text, "missing field \"text\"");
      continue;
    }
    if (text_field.get(text)) {
      report(&issues_.missing_text, "field \"text\" is not a string");
      continue;
    }
    std::string_view url, timestamp;
    doc->text.assign(text);
    if (object["url"].get(url) == simdjson::SUCCESS) {
      doc->url.assign(url);
    } else {
      doc->url = fmt::format("{}:{}", paths_[next_file_ - 1], source_->line_number());
    }
    doc->timestamp.clear();
    if (object["timestamp"].get(timestamp) == simdjson::SUCCESS) doc->timestamp.assign(timestamp);
    return true;
  }
  return false;
}

bool DocumentReader::next_text_document(Document* doc) {
  std::string& line = json_->line;
  for (;;) {
    doc->text.clear();
    uint64_t first_line = 0;
    bool valid = true;
    while (source_->next(&line)) {
      if (line.find_first_not_of(" \t") == std::string::npos) {
        if (doc->text.empty()) continue;
        break;
      }
      if (doc->text.empty()) first_line = source_->line_number();
      valid = valid && simdjson::validate_utf8(line.data(), line.size());
      if (!doc->text.empty()) doc->text += '\n';
      doc->text += line;
    }
    if (doc->text.empty()) return false;
    if (!valid) {
      report(&issues_.invalid_utf8,
             fmt::format("invalid UTF-8 in the block starting at line {}", first_line));
      continue;
    }
    doc->url = fmt::format("{}:{}", paths_[next_file_ - 1], first_line);
    doc->timestamp.clear();
    return true;
  }
}

}  // namespace triad
