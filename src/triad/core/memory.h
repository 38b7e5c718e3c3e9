#pragma once
// Process memory as the kernel counts it (/proc/self/status).

#include <cstddef>

namespace triad {

size_t peak_rss_bytes();     // VmHWM: the high-water mark of resident memory
size_t current_rss_bytes();  // VmRSS

}  // namespace triad
