#pragma once
// A progress line for long stages: "encode  41% 12034 docs 5.1 MB/s 2410 docs/s ETA 0:13".
// On a terminal the line rewrites itself at most 5 times a second; otherwise (logs, CI) a full line is
// printed every 10 seconds. finish() prints the stage's totals once.

#include <cstdint>
#include <string>

#include "triad/core/clock.h"

namespace triad {

class Progress {
 public:
  // `total_bytes` drives the percentage and ETA; 0 when unknown.
  Progress(std::string stage, uint64_t total_bytes, std::string unit = "docs");
  void add(uint64_t items, uint64_t bytes);
  void finish();
  double seconds() const;

 private:
  void print(bool final);

  std::string stage_, unit_;
  uint64_t total_bytes_, items_ = 0, bytes_ = 0;
  Clock::time_point start_, last_print_;
  bool tty_, printed_ = false, finished_ = false;
};

}  // namespace triad
