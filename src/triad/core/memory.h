#pragma once
// Process memory as the kernel counts it (/proc/self/status), and the memory there is.

#include <cstddef>

namespace triad {

size_t peak_rss_bytes();     // VmHWM: the high-water mark of resident memory
size_t current_rss_bytes();  // VmRSS
// The memory this process may use at most: the machine's physical memory, or the cgroup's limit when lower.
size_t physical_memory_bytes();

}  // namespace triad
