#include "triad/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include "triad/core/format.h"
#include "triad/core/log.h"

namespace triad {

Progress::Progress(std::string stage, uint64_t total_bytes, std::string unit)
    : stage_(std::move(stage)),
      unit_(std::move(unit)),
      total_bytes_(total_bytes),
      start_(Clock::now()),
      last_print_(start_),
      tty_(isatty(STDERR_FILENO)) {}

double Progress::seconds() const {
  return seconds_since(start_);
}

void Progress::add(uint64_t items, uint64_t bytes) {
  items_ += items;
  bytes_ += bytes;
  const auto now = Clock::now();
  double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (tty_ ? 0.2 : 10.0)) {
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  print(true);
}

void Progress::print(bool final) {
  if (quiet()) return;
  double t = std::max(seconds(), 1e-9);
  std::string line = fmt::format("{:<10}", stage_);
  if (total_bytes_ > 0 && !final) line += fmt::format(" {:3.0f}%", 100.0 * bytes_ / total_bytes_);
  line += fmt::format(" {} {} {:.1f} MB/s {:.0f} {}/s", items_, unit_, bytes_ / t / 1e6, items_ / t, unit_);
  if (final) {
    line += fmt::format(" in {}", format_duration(t));
  } else if (total_bytes_ > 0 && bytes_ > 0 && bytes_ < total_bytes_) {
    line += fmt::format(" ETA {}", format_duration(t * (total_bytes_ - bytes_) / bytes_));
  }
  if (tty_) {
    fmt::print(stderr, "\r{:<78}{}", line, final ? "\n" : "");
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  printed_ = true;
}

}  // namespace triad
