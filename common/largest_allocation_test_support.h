// For tests that must see what a piece of code allocates (e.g. that a frame reader does not
// reserve the length a header announces): replaces the global operator new/delete of the
// test binary and records the largest single allocation of a thread while a
// LargestAllocation lives. Include it in exactly one source file of a test binary (it
// defines the replacement operators).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace dmahil::testing::largest_allocation_detail {
inline thread_local bool tracking = false;
inline thread_local std::size_t largest = 0;
}  // namespace dmahil::testing::largest_allocation_detail

// Not inlined, so that the compiler sees new paired with delete, not malloc with free.
[[gnu::noinline]] void* operator new(std::size_t n) {
  namespace d = dmahil::testing::largest_allocation_detail;
  if (d::tracking && n > d::largest) d::largest = n;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace dmahil::testing {

/// Tracks the largest single operator new (bytes) of this thread while it lives.
class LargestAllocation {
 public:
  LargestAllocation() {
    largest_allocation_detail::largest = 0;
    largest_allocation_detail::tracking = true;
  }
  ~LargestAllocation() { largest_allocation_detail::tracking = false; }
  LargestAllocation(const LargestAllocation&) = delete;
  LargestAllocation& operator=(const LargestAllocation&) = delete;
  /// The largest allocation so far, bytes.
  std::size_t bytes() const { return largest_allocation_detail::largest; }
};

}  // namespace dmahil::testing
