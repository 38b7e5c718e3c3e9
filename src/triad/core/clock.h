#pragma once
// The monotonic clock every timing in triad reads (step times, probes, timeouts).

#include <chrono>

namespace triad {

using Clock = std::chrono::steady_clock;

// Seconds from `start` to now.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace triad
