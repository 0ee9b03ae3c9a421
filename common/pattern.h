// Self-describing cache-line patterns (docs/architecture.md §6): the oracle's data format.
//
// Freestanding (no heap, no exceptions, no libc beyond <cstdint>/<cstddef>): compiled
// into the firmware as well as the agent and the controller.
//
// A line of `line_size` bytes is line_size/8 little-endian 64-bit words:
//   word 0: kMagic << 48 | buffer_id << 32 | generation << 16 | seed_tag(seed)
//   word 1: line << 32 | check32(word 0, line)
//   word k >= 2: Body(seed, word 0, line, k), a counter-based PRNG (splitmix64)
// so any line found anywhere says which run, buffer, generation and line index wrote it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/seed_mix.h"

namespace dmahil::pattern {

inline constexpr uint16_t kMagic = 0xD4A1;
inline constexpr uint32_t kMinLineSize = 16;
inline constexpr uint32_t kMaxLineSize = 4096;

/// Parameters of a fill or check (mirrors dmahil.v1.PatternSpec). Line k of a range is
/// line index first_line + k of buffer buffer_id.
struct Spec {
  uint64_t seed = 0;
  uint32_t buffer_id = 0;   // 16 bits used
  uint32_t generation = 0;  // 16 bits used
  uint32_t first_line = 0;
  uint32_t line_size = 64;  // bytes, power of two in [kMinLineSize, kMaxLineSize]
};

/// Classes of a checked line; values equal dmahil.v1.LineClass.
enum class LineClass : uint8_t {
  kOk = 1,
  kStale = 2,      // same buffer and line, other generation
  kMisplaced = 3,  // a whole valid line of another buffer or line index
  kTorn = 4,       // some words of the expected line, the rest not
  kZero = 5,       // all zero
  kCorrupt = 6,    // anything else
  kBusError = 7,   // set by the device when the address did not decode
};

/// One checked line that was not kOk.
struct Finding {
  uint32_t line = 0;  // line index within the buffer
  LineClass cls = LineClass::kOk;
  uint32_t found_buffer = 0;  // header found in the line (kStale, kMisplaced, kTorn)
  uint32_t found_generation = 0;
  uint32_t found_line = 0;
  uint32_t good_words = 0;  // words equal to the expected line
};

constexpr bool ValidLineSize(uint32_t line_size) {
  return line_size >= kMinLineSize && line_size <= kMaxLineSize &&
         (line_size & (line_size - 1)) == 0;
}

namespace detail {

constexpr uint64_t SplitMix64(uint64_t x) { return MixSeed(x); }  // common/seed_mix.h

constexpr uint16_t SeedTag(uint64_t seed) {
  return static_cast<uint16_t>(SplitMix64(seed ^ 0x5EED) & 0xFFFF);
}

constexpr uint32_t Check32(uint64_t word0, uint32_t line) {
  return static_cast<uint32_t>(SplitMix64(word0 * 31 + line) >> 32);
}

inline uint64_t Load(const uint8_t* p) {
  uint64_t v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline void Store(uint8_t* p, uint64_t v) { __builtin_memcpy(p, &v, sizeof v); }

}  // namespace detail

/// Header word 0 of a line of (seed, buffer_id, generation).
constexpr uint64_t HeaderWord0(uint64_t seed, uint32_t buffer_id, uint32_t generation) {
  return (uint64_t{kMagic} << 48) | (uint64_t{buffer_id & 0xFFFF} << 32) |
         (uint64_t{generation & 0xFFFF} << 16) | detail::SeedTag(seed);
}

/// Word k of line `line` for header word0 (k = 0 header, 1 index+check, >= 2 body).
constexpr uint64_t LineWord(uint64_t seed, uint64_t word0, uint32_t line, uint32_t k) {
  if (k == 0) return word0;
  if (k == 1) return (uint64_t{line} << 32) | detail::Check32(word0, line);
  return detail::SplitMix64(seed ^ detail::SplitMix64(word0 ^ (uint64_t{line} << 20) ^ k));
}

/// Writes line index `line` of `spec`'s buffer (spec.line_size bytes) to `out`.
inline void FillLine(const Spec& spec, uint32_t line, uint8_t* out) {
  const uint64_t w0 = HeaderWord0(spec.seed, spec.buffer_id, spec.generation);
  const uint32_t words = spec.line_size / 8;
  for (uint32_t k = 0; k < words; ++k) detail::Store(out + 8 * k, LineWord(spec.seed, w0, line, k));
}

/// Fills `bytes` (a multiple of spec.line_size) with lines first_line, first_line+1, ...
inline void Fill(const Spec& spec, uint8_t* out, size_t bytes) {
  const size_t lines = bytes / spec.line_size;
  for (size_t i = 0; i < lines; ++i)
    FillLine(spec, spec.first_line + static_cast<uint32_t>(i), out + i * spec.line_size);
}

/// Classifies one line that should be line `line` of `spec` (docs/architecture.md §6 table).
inline Finding ClassifyLine(const Spec& spec, uint32_t line, const uint8_t* data) {
  Finding f;
  f.line = line;
  const uint32_t words = spec.line_size / 8;
  const uint64_t w0 = HeaderWord0(spec.seed, spec.buffer_id, spec.generation);
  bool all_zero = true;
  for (uint32_t k = 0; k < words; ++k) {
    const uint64_t v = detail::Load(data + 8 * k);
    if (v == LineWord(spec.seed, w0, line, k)) ++f.good_words;
    if (v != 0) all_zero = false;
  }
  if (f.good_words == words) return f;  // kOk
  if (all_zero) {
    f.cls = LineClass::kZero;
    return f;
  }
  // Is there a valid header of this run in the line, and does its body agree with it?
  const uint64_t h0 = detail::Load(data);
  const uint64_t h1 = detail::Load(data + 8);
  const bool header_ok = (h0 >> 48) == kMagic &&
                         static_cast<uint16_t>(h0 & 0xFFFF) == detail::SeedTag(spec.seed) &&
                         static_cast<uint32_t>(h1 & 0xFFFFFFFF) ==
                             detail::Check32(h0, static_cast<uint32_t>(h1 >> 32));
  if (header_ok) {
    f.found_buffer = static_cast<uint32_t>((h0 >> 32) & 0xFFFF);
    f.found_generation = static_cast<uint32_t>((h0 >> 16) & 0xFFFF);
    f.found_line = static_cast<uint32_t>(h1 >> 32);
    uint32_t consistent = 0;
    for (uint32_t k = 0; k < words; ++k)
      if (detail::Load(data + 8 * k) == LineWord(spec.seed, h0, f.found_line, k)) ++consistent;
    if (consistent == words) {
      const bool same_place = f.found_buffer == (spec.buffer_id & 0xFFFF) && f.found_line == line;
      f.cls = same_place ? LineClass::kStale : LineClass::kMisplaced;
      return f;
    }
  }
  f.cls = f.good_words > 0 ? LineClass::kTorn : LineClass::kCorrupt;
  return f;
}

/// Checks `bytes` (a multiple of spec.line_size) against lines first_line, ... Calls
/// `on_mismatch(const Finding&)` for each line that is not kOk, in order. Returns the
/// number of kOk lines.
template <typename Sink>
size_t Check(const Spec& spec, const uint8_t* data, size_t bytes, Sink&& on_mismatch) {
  const uint64_t w0 = HeaderWord0(spec.seed, spec.buffer_id, spec.generation);
  const uint32_t words = spec.line_size / 8;
  const size_t lines = bytes / spec.line_size;
  size_t ok = 0;
  for (size_t i = 0; i < lines; ++i) {
    const uint32_t line = spec.first_line + static_cast<uint32_t>(i);
    const uint8_t* p = data + i * spec.line_size;
    bool same = true;
    for (uint32_t k = 0; k < words && same; ++k)
      same = detail::Load(p + 8 * k) == LineWord(spec.seed, w0, line, k);
    if (same) {
      ++ok;
    } else {
      on_mismatch(ClassifyLine(spec, line, p));
    }
  }
  return ok;
}

}  // namespace dmahil::pattern
