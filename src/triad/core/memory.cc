#include "triad/core/memory.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace triad {

namespace {
size_t status_kb(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  size_t kb = 0;
  const size_t n = std::strlen(field);
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, field, n) == 0) {
      std::sscanf(line + n, " %zu", &kb);
      break;
    }
  }
  std::fclose(f);
  return kb;
}
}  // namespace

size_t peak_rss_bytes() {
  return status_kb("VmHWM:") * 1024;
}
size_t current_rss_bytes() {
  return status_kb("VmRSS:") * 1024;
}

std::string host_name() {
  char buffer[256] = {};
  if (gethostname(buffer, sizeof buffer - 1) != 0) return "unknown";
  return buffer;
}

size_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  size_t bytes =
      pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page_size) : SIZE_MAX;
  // cgroup v2; "max" when unlimited (and then the scan fails).
  if (FILE* f = std::fopen("/sys/fs/cgroup/memory.max", "r")) {
    size_t limit = 0;
    if (std::fscanf(f, "%zu", &limit) == 1 && limit > 0) bytes = std::min(bytes, limit);
    std::fclose(f);
  }
  return bytes;
}

}  // namespace triad
