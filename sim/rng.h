// Deterministic PRNG of the virtual board: every run is reproducible from its seed
// (docs/architecture.md §7). splitmix64 stream: the same seed gives the same sequence on every
// host.
#pragma once

#include <cstdint>

namespace dmahil::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n), n > 0 (modulo bias < 2^-40 for the n used here).
  uint64_t Below(uint64_t n) { return Next() % n; }
  /// True with probability ppm / 1e6.
  bool ChancePpm(uint32_t ppm) { return ppm > 0 && Below(1000000) < ppm; }

 private:
  uint64_t state_;
};

}  // namespace dmahil::sim
