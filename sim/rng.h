// Deterministic PRNG of the virtual board: every run is reproducible from its seed
// (docs/architecture.md §7). splitmix64 stream: the same seed gives the same sequence on every
// host.
#pragma once

#include <cstdint>

#include "common/seed_mix.h"

namespace dmahil::sim {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    const uint64_t z = MixSeed(state_);  // mixes state_ + the golden-ratio increment
    state_ += 0x9E3779B97F4A7C15ULL;
    return z;
  }
  /// Uniform in [0, n), n > 0 (modulo bias < 2^-40 for the n used here).
  uint64_t Below(uint64_t n) { return Next() % n; }
  /// True with probability ppm / 1e6.
  bool ChancePpm(uint32_t ppm) { return ppm > 0 && Below(1000000) < ppm; }

 private:
  uint64_t state_;
};

}  // namespace dmahil::sim
