#include "triad/core/file_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "triad/core/error.h"

namespace triad {

std::string errno_text() {
  return std::strerror(errno);
}

AtomicFile::AtomicFile(std::string path, unsigned mode) : path_(std::move(path)) {
  temp_path_ = fmt::format("{}.tmp-{}", path_, getpid());
  ::unlink(temp_path_.c_str());  // a leftover of a crashed process with our pid keeps its old mode otherwise
  int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd >= 0) file_ = ::fdopen(fd, "wb");
  if (!file_) {
    std::string why = errno_text();
    if (fd >= 0) ::close(fd);
    fail("cannot create {}: {}", temp_path_, why);
  }
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
}

AtomicFile::~AtomicFile() {
  if (file_) {
    std::fclose(file_);
    std::remove(temp_path_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (bytes && std::fwrite(data, 1, bytes, file_) != bytes)
    fail("cannot write {}: {}", temp_path_, errno_text());
  size_ += bytes;
}

void AtomicFile::write_at(uint64_t offset, const void* data, size_t bytes) {
  if (offset + bytes > size_) fail("internal: write_at past the end of {}", temp_path_);
  if (std::fflush(file_) != 0 || std::fseek(file_, static_cast<long>(offset), SEEK_SET) != 0 ||
      std::fwrite(data, 1, bytes, file_) != bytes || std::fseek(file_, 0, SEEK_END) != 0) {
    fail("cannot write {}: {}", temp_path_, errno_text());
  }
}

void AtomicFile::commit() {
  if (std::fflush(file_) != 0 || fsync(fileno(file_)) != 0)
    fail("cannot flush {}: {}", temp_path_, errno_text());
  if (std::fclose(file_) != 0) fail("cannot close {}: {}", temp_path_, errno_text());
  file_ = nullptr;
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    std::string why = errno_text();
    std::remove(temp_path_.c_str());
    fail("cannot rename {} to {}: {}", temp_path_, path_, why);
  }
  fsync_dir(std::filesystem::path(path_).parent_path().string());
}

void write_file_atomic(const std::string& path, std::string_view contents, unsigned mode) {
  AtomicFile file(path, mode);
  file.write(contents);
  file.commit();
}

std::string read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot open {}: {}", path, errno_text());
  std::string out;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) out.append(buffer, n);
  bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail("cannot read {}: {}", path, errno_text());
  return out;
}

nlohmann::json read_json_file(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: {}", path, e.what());
  }
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail("cannot stat {}: {}", path, errno_text());
  return static_cast<uint64_t>(st.st_size);
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) fail("cannot create directory {}: {}", path, ec.message());
}

std::vector<std::string> directory_listing(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string() + (e.is_directory() && !e.is_symlink() ? "/" : ""));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool has_json_format(const std::string& path, std::string_view format) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  auto j = nlohmann::json::parse(read_file(path), nullptr, false);
  return j.is_object() && j.value("format", nlohmann::json()) == format;
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("cannot open directory {}: {}", dir, errno_text());
  ::fsync(fd);  // best effort: some file systems refuse fsync on directories
  ::close(fd);
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open {}: {}", path, errno_text());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("cannot stat {}: {}", path, errno_text());
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail("cannot map {}: {}", path, errno_text());
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace triad
