// Walking an address range in pieces that never cross a granule (a 4 KiB Xen page, a cache
// line): every translation and cache operation in the model works one piece at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
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

/// std::memcpy for the model's copies, which are nearly always one whole cache line:
/// the usual line sizes get a constant-size copy (a few vector moves), anything else
/// std::memcpy. (A variable-size copy bounded by a granule is otherwise inlined as
/// `rep movsq`, whose start-up cost dominated the model.)
inline void CopyBytes(uint8_t* dst, const uint8_t* src, uint64_t n) {
  switch (n) {
    case 64:
      std::memcpy(dst, src, 64);
      return;
    case 128:
      std::memcpy(dst, src, 128);
      return;
    case 32:
      std::memcpy(dst, src, 32);
      return;
    default:
      std::memcpy(dst, src, n);
      return;
  }
}

}  // namespace dmahil::sim
