#pragma once
// Input documents: C4-schema JSONL ({"text", "url", "timestamp"}, one object per line), plain text (one
// document per blank-line-separated block), either of them gzipped. Lines that cannot be used are counted,
// the first few reported as "file:line: why", and skipped; in strict mode the first one is an error.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace triad {

struct Document {
  std::string text;
  std::string url;        // from the input, or "file:line" when it has none
  std::string timestamp;  // from the input, or empty
};

struct InputIssues {
  static constexpr size_t kMaxExamples = 5;
  uint64_t malformed_json = 0;  // not JSON, or not an object
  uint64_t missing_text = 0;    // no "text" field, or not a string
  uint64_t invalid_utf8 = 0;
  std::vector<std::string> examples;  // the first kMaxExamples, "file:line: why"
  uint64_t total() const { return malformed_json + missing_text + invalid_utf8; }
};

struct InputFile {
  std::string path;
  uint64_t bytes = 0;
  std::string sha256;  // of the file as stored (compressed bytes for .gz); set once the file is read
};

// Expands each argument: a file, a directory (its .jsonl/.jsonl.gz/.txt/.txt.gz files, sorted) or a glob.
// A pattern that matches nothing or an unsupported file type is a usage error naming it.
std::vector<std::string> expand_inputs(const std::vector<std::string>& patterns);

class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> paths, bool strict);
  ~DocumentReader();

  // Appends documents until about `max_bytes` of text were added; false when none was left to add.
  bool read_batch(std::vector<Document>* out, size_t max_bytes);

  const InputIssues& issues() const { return issues_; }
  const std::vector<InputFile>& files() const { return files_; }
  uint64_t total_bytes() const { return total_bytes_; }  // raw size of all inputs
  uint64_t bytes_read() const;                           // raw bytes consumed so far

 private:
  class LineSource;
  bool next_document(Document* doc);
  bool next_jsonl_document(Document* doc);
  bool next_text_document(Document* doc);
  void report(uint64_t* counter, const std::string& why);

  std::vector<std::string> paths_;
  bool strict_;
  std::vector<InputFile> files_;
  uint64_t total_bytes_ = 0, bytes_done_ = 0;
  size_t next_file_ = 0;
  std::unique_ptr<LineSource> source_;
  bool source_is_text_ = false;
  InputIssues issues_;
  struct Json;
  std::unique_ptr<Json> json_;
};

}  // namespace triad
