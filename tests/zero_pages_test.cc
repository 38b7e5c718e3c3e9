// core/zero_pages.h: a range given back reads as zeros, its neighbours keep their values, and making pages
// writable ahead of a kernel changes nothing they hold but makes them resident.

#include "triad/core/zero_pages.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cerrno>
#include <vector>

namespace triad {
namespace {

using Buffer = std::vector<float, ZeroPagesAllocator<float>>;

// Resident pages of [p, p + n) by mincore, counting the pages it touches.
size_t resident_pages(const float* p, size_t n) {
  const uintptr_t page = page_bytes();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(p + n);
  std::vector<unsigned char> in((end - begin + page - 1) / page);
  EXPECT_EQ(mincore(reinterpret_cast<void*>(begin), end - begin, in.data()), 0);
  size_t resident = 0;
  for (unsigned char c : in) resident += c & 1;
  return resident;
}

TEST(ZeroPages, ReleasedRangeReadsZeroAndPrefaultKeepsEveryValue) {
  const size_t n = 3 << 20;  // 12 MiB: calloc maps it fresh
  Buffer buffer(n);
  for (size_t i = 0; i < n; ++i) buffer[i] = static_cast<float>(i % 1000) + 1.0f;
  const size_t lo = 1000003, hi = 2000017;  // not on page boundaries: the edge pages are shared
  release_to_zero(buffer.data() + lo, hi - lo);
  prefault_for_write(buffer.data() + lo - 5000, hi - lo + 10000);  // over both edges
  for (size_t i = 0; i < n; ++i) {
    const float want = i >= lo && i < hi ? 0.0f : static_cast<float>(i % 1000) + 1.0f;
    ASSERT_EQ(buffer[i], want) << i;
  }
}

TEST(ZeroPages, PrefaultMakesAReleasedRangeResident) {
  Buffer probe(1 << 20);
  const uintptr_t page = page_bytes();
  void* aligned =
      reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(probe.data()) + page - 1) / page * page);
  if (madvise(aligned, page, MADV_POPULATE_WRITE) != 0 && errno == EINVAL) {
    GTEST_SKIP() << "this kernel has no MADV_POPULATE_WRITE (Linux < 5.14): prefaulting does nothing";
  }
  const size_t n = 4 << 20;
  Buffer buffer(n);
  release_to_zero(buffer.data(), n);
  const size_t pages = n * sizeof(float) / page_bytes();
  EXPECT_LT(resident_pages(buffer.data(), n), pages / 2);
  prefault_for_write(buffer.data(), n);
  EXPECT_GE(resident_pages(buffer.data(), n), pages - 2);
  for (size_t i = 0; i < n; i += 4096) ASSERT_EQ(buffer[i], 0.0f);
}

}  // namespace
}  // namespace triad
