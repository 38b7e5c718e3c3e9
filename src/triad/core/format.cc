#include "triad/core/format.h"

#include <fmt/format.h>

namespace triad {

std::string format_bytes(size_t bytes) {
  if (bytes >= (size_t{1} << 30)) return fmt::format("{:.2f}GiB", bytes / double(1 << 30));
  if (bytes >= (size_t{1} << 20)) return fmt::format("{:.1f}MiB", bytes / double(1 << 20));
  return fmt::format("{:.1f}KiB", bytes / 1024.0);
}

std::string format_duration(double seconds) {
  auto s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string some_of(const std::vector<std::string>& names) {
  constexpr size_t kShown = 4;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kShown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > kShown) out += fmt::format(" and {} more", names.size() - kShown);
  return out;
}

}  // namespace triad
