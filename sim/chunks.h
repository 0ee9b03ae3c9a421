// Walking an address range in pieces that never cross a granule (a 4 KiB Xen page, a cache
// line): every translation and cache operation in the model works one piece at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace dmahil::sim {

/// Calls fn(piece_addr, done, piece_len) for each piece of [addr, addr + len) split at
/// every multiple of granule (a power of two), in order; done is the bytes before the
/// piece. If fn returns bool, a false stops the walk and ForEachChunk returns false.
template <typename Fn>
bool ForEachChunk(uint64_t addr, uint64_t len, uint64_t granule, Fn&& fn) {
  uint64_t done = 0;
  while (done < len) {
    const uint64_t at = addr + done;
    const uint64_t n = std::min(len - done, granule - (at & (granule - 1)));
    if constexpr (std::is_same_v<decltype(fn(at, done, n)), bool>) {
      if (!fn(at, done, n)) return false;
    } else {
      fn(at, done, n);
    }
    done += n;
  }
  return true;
}

}  // namespace dmahil::sim
