#pragma once
// This process as the kernel reports it: its memory (/proc/self/status), the memory it may use, and its
// machine's name.

#include <cstddef>
#include <string>

namespace triad {

size_t peak_rss_bytes();     // VmHWM: the high-water mark of resident memory
size_t current_rss_bytes();  // VmRSS
std::string host_name();     // gethostname(), or "unknown"
// The memory this process may use at most: the machine's physical memory, or the cgroup's limit when lower.
size_t physical_memory_bytes();

}  // namespace triad
