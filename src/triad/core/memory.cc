#include "triad/core/memory.h"

#include <unistd.h>

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

}  // namespace triad
