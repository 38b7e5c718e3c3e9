#include "triad/train/metrics.h"

#include <unistd.h>

#include <filesystem>

#include "triad/core/error.h"
#include "triad/core/file_io.h"

namespace triad {

MetricsLog::MetricsLog(const std::string& run_dir, int keep_through_step)
    : path_((std::filesystem::path(run_dir) / "metrics.jsonl").string()) {
  if (path_exists(path_)) {
    std::string kept, text = read_file(path_);
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) break;  // a torn last line: drop it
      std::string line = text.substr(start, end - start);
      start = end + 1;
      auto record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_discarded() || record.value("step", 0) > keep_through_step) continue;
      kept += line + "\n";
    }
    if (kept.size() != text.size()) write_file_atomic(path_, kept);
  }
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) fail("cannot open {}: {}", path_, errno_text());
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::string line = record.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    fail("cannot write {}: {}", path_, errno_text());
  }
}

void MetricsLog::on_checkpoint(Trainer&, const CheckpointInfo&) {
  ::fsync(fileno(file_));
}

}  // namespace triad
