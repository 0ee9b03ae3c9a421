// The one seed mixer: SplitMix64's finaliser (Steele, Lea, Flood, "Fast splittable
// pseudorandom number generators", OOPSLA 2014), used wherever dmahil derives one seed
// from another (board and fixture seeds, the pattern body, the model's PRNG).
// Freestanding: also compiled into the firmware.
#pragma once

#include <cstdint>

namespace dmahil {

/// SplitMix64 of `x`: adds the golden-ratio increment, then mixes. A bijection on 64 bits.
constexpr uint64_t MixSeed(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace dmahil
