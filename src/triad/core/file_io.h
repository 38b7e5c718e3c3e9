#pragma once
// Files. Everything triad writes goes through AtomicFile: written under a temporary name, fsynced, then
// renamed over the final name, so a crash never leaves a file that looks complete.

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace triad {

class AtomicFile {
 public:
  // Opens "<path>.tmp-<pid>", created afresh with permission bits `mode` (less the umask), so a secret file
  // (mode 0600) is never readable by others, not even for a moment.
  explicit AtomicFile(std::string path, unsigned mode = 0666);
  ~AtomicFile();  // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Overwrites bytes already written at `offset` (e.g. a header whose checksum is known only at the end).
  void write_at(uint64_t offset, const void* data, size_t bytes);
  uint64_t bytes_written() const { return size_; }
  // Flushes, fsyncs, renames to the final path and fsyncs the directory.
  void commit();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string temp_path_;
  FILE* file_ = nullptr;
  uint64_t size_ = 0;
};

void write_file_atomic(const std::string& path, std::string_view contents, unsigned mode = 0666);
std::string read_file(const std::string& path);
// The JSON document in `path`; a malformed one fails naming the file.
nlohmann::json read_json_file(const std::string& path);
bool path_exists(const std::string& path);
uint64_t file_size(const std::string& path);
void make_dirs(const std::string& path);
// The names in a directory, sorted, a directory's with a trailing "/" ("checkpoints/", "thesis.tex").
std::vector<std::string> directory_listing(const std::string& dir);
// Whether `path` is a JSON object whose "format" is `format`: how --force recognises a directory triad wrote
// (a run's run.json, prepared data's manifest.json) before it replaces anything in it.
bool has_json_format(const std::string& path, std::string_view format);
void fsync_dir(const std::string& dir);

// A read-only memory map of a whole file.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace triad
