// Fill and Check of the pattern format at memory speed: the same lines and the same
// findings as the scalar engine of common/pattern.h (whose header comment defines the
// format), computed with the CPU's vector unit. Host code only (agent, controller, bench):
// the firmware keeps the freestanding scalar engine.
//
// Paths: kScalar (common/pattern.h itself) everywhere; on x86-64 kSse2 (the baseline),
// kAvx2 and kAvx512 (AVX-512F + DQ) when the CPU has them, chosen at run time; on
// aarch64 kNeon. Every path writes the same bytes as pattern::Fill and reports the same
// ok count and the same Findings, in the same order, as pattern::Check:
// common/pattern_paths_test.cc compares them on every path the machine has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/pattern.h"

namespace dmahil::pattern {

/// An implementation of the engine.
enum class Path : uint8_t { kScalar, kSse2, kAvx2, kAvx512, kNeon };

/// "scalar", "sse2", "avx2", "avx512", "neon".
std::string_view PathName(Path path);

/// Every path this CPU can run, kScalar first, then slowest to fastest.
std::span<const Path> AvailablePaths();

/// The path FastFill and FastCheck use by default: the fastest available (decided once,
/// from the CPU's features): kAvx512, else kAvx2, else kNeon, else kScalar (kSse2 is
/// slower than kScalar; it exists as the x86-64 baseline and for comparison).
Path BestPath();

/// pattern::Fill on `path`: writes lines spec.first_line, spec.first_line + 1, ... of
/// spec's buffer to out[0, bytes). bytes: a multiple of spec.line_size (a trailing partial
/// line is left untouched, as pattern::Fill does). spec.line_size must be valid
/// (pattern::ValidLineSize). Buffers of 8 MiB and more are written with non-temporal
/// stores on x86 (they would not fit in the caches anyway).
/// Throws std::invalid_argument if path is not in AvailablePaths() or the line size is
/// invalid.
void FastFill(const Spec& spec, uint8_t* out, size_t bytes, Path path = BestPath());

/// The number of leading lines of data[0, lines * spec.line_size) that equal lines
/// spec.first_line, ... of spec's buffer exactly (all words), computed on `path`.
/// Throws std::invalid_argument as FastFill.
size_t MatchingLines(const Spec& spec, const uint8_t* data, size_t lines, Path path);

/// pattern::Check on `path`: checks data[0, bytes) (a multiple of spec.line_size) against
/// lines spec.first_line, ...; calls on_mismatch(const Finding&) for each line that is not
/// kOk, in order, with pattern::ClassifyLine's Finding; returns the number of kOk lines.
/// Throws std::invalid_argument as FastFill.
template <typename Sink>
size_t FastCheck(const Spec& spec, const uint8_t* data, size_t bytes, Sink&& on_mismatch,
                 Path path = BestPath()) {
  const size_t lines = ValidLineSize(spec.line_size) ? bytes / spec.line_size : 0;
  if (lines == 0) return MatchingLines(spec, data, 0, path);  // 0, or throws
  size_t ok = 0;
  size_t i = 0;
  while (i < lines) {
    Spec rest = spec;
    rest.first_line = spec.first_line + static_cast<uint32_t>(i);
    const size_t n = MatchingLines(rest, data + i * spec.line_size, lines - i, path);
    ok += n;
    i += n;
    if (i == lines) break;
    on_mismatch(
        ClassifyLine(spec, spec.first_line + static_cast<uint32_t>(i), data + i * spec.line_size));
    ++i;
  }
  return ok;
}

}  // namespace dmahil::pattern
