#pragma once
// Buffers of zeros that take memory only where they are written. ZeroPagesAllocator takes memory from
// calloc, which for large blocks maps fresh pages from the kernel without touching them, and leaves the
// values it already has (zeros) instead of writing them again: a std::vector<float,
// ZeroPagesAllocator<float>> of n elements costs no resident memory until its pages are written.
// release_to_zero() gives the pages of a range back to the kernel (the next read sees zeros), so a gradient
// buffer written block by block can stay one block large in resident memory (the fused update,
// train/fused_update.h).

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace triad {

template <typename T>
struct ZeroPagesAllocator {
  using value_type = T;
  ZeroPagesAllocator() = default;
  template <typename U>
  ZeroPagesAllocator(const ZeroPagesAllocator<U>&) {}
  T* allocate(size_t n) {
    void* p = std::calloc(n, sizeof(T));
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  // Value-initialisation of an arithmetic T is zero, which calloc's memory already is.
  template <typename U>
  void construct(U* /*p*/) {}
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const ZeroPagesAllocator<U>&) const {
    return true;
  }
};

inline uintptr_t page_bytes() {
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// The whole pages inside [p, p + n) as addresses [begin, end); begin >= end when there are none.
struct PageSpan {
  uintptr_t begin, end;
};
template <typename T>
PageSpan whole_pages_inside(T* p, size_t n) {
  const uintptr_t page = page_bytes();
  return {(reinterpret_cast<uintptr_t>(p) + page - 1) / page * page,
          reinterpret_cast<uintptr_t>(p + n) / page * page};
}

// Sets [p, p + n) to zero: the whole pages inside it are handed back to the kernel (MADV_DONTNEED: private
// anonymous memory reads as zeros afterwards, and is resident again only once written), the parts of pages
// shared with the neighbours are written.
template <typename T>
void release_to_zero(T* p, size_t n) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p), end = begin + n * sizeof(T);
  const PageSpan inner = whole_pages_inside(p, n);
  if (inner.begin >= inner.end) {
    std::memset(p, 0, n * sizeof(T));
    return;
  }
  std::memset(p, 0, inner.begin - begin);
  std::memset(reinterpret_cast<void*>(inner.end), 0, end - inner.end);
  if (madvise(reinterpret_cast<void*>(inner.begin), inner.end - inner.begin, MADV_DONTNEED) != 0) {
    std::memset(reinterpret_cast<void*>(inner.begin), 0, inner.end - inner.begin);  // not anonymous memory
  }
}

// Makes the pages of [p, p + n) resident and writable without changing what they hold (MADV_POPULATE_WRITE,
// one call), ahead of a kernel that accumulates into a released range. Left to itself, such a kernel's first
// read of each page maps the shared zero page and its write then copies it, and that copy must flush the
// page from every thread's TLB: on this VM the inter-processor interrupts made a fused-update step 14x
// slower. Where the kernel lacks the call (before Linux 5.14), the pages fault as before.
template <typename T>
void prefault_for_write(T* p, size_t n) {
  const uintptr_t page = page_bytes();
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t end = reinterpret_cast<uintptr_t>(p + n);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

// Asks for transparent huge pages (2 MiB) over [p, p + n): a range released and written again each step
// then faults 512 times less often.
template <typename T>
void prefer_huge_pages(T* p, size_t n) {
  const PageSpan inner = whole_pages_inside(p, n);
  if (inner.end > inner.begin)
    madvise(reinterpret_cast<void*>(inner.begin), inner.end - inner.begin, MADV_HUGEPAGE);
}

}  // namespace triad
