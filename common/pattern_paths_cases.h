// Test support for common/pattern_paths_test.cc and common/pattern_paths_standalone.cc
// (the aarch64 run of ci/pattern-aarch64.sh): buffers to check, clean and corrupted, and
// the comparison of one path of common/pattern_fast.h with the scalar engine of
// common/pattern.h. Header only, standard library only (it is cross-compiled without
// fmt or GoogleTest).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "common/pattern.h"
#include "common/pattern_fast.h"

namespace dmahil::pattern::testing {

/// One buffer to check against `spec`: lines spec.first_line, ... possibly damaged.
struct PathCase {
  std::string name;
  Spec spec;
  std::vector<uint8_t> data;  // a whole number of lines
};

/// splitmix64 stream: the cases are the same on every host.
class CaseRng {
 public:
  explicit CaseRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() { return detail::SplitMix64(state_++); }
  uint64_t Below(uint64_t n) { return Next() % n; }

 private:
  uint64_t state_;
};

inline std::vector<uint8_t> Filled(const Spec& spec, size_t lines) {
  std::vector<uint8_t> out(lines * spec.line_size);
  Fill(spec, out.data(), out.size());
  return out;
}

/// Overwrites line i of `data` (a buffer of spec) with one kind of damage; `kind` in
/// [0, kDamageKinds). The names say which LineClass the damage is meant to produce.
inline constexpr int kDamageKinds = 9;
inline const char* DamageName(int kind) {
  static const char* const kNames[kDamageKinds] = {
      "stale",          "misplaced-line", "misplaced-buffer", "torn-half", "zero",
      "corrupt-random", "bit-flip",       "header-only",      "other-seed"};
  return kNames[kind];
}

inline void Damage(const Spec& spec, std::vector<uint8_t>& data, size_t i, int kind, CaseRng& rng) {
  const uint32_t ls = spec.line_size;
  uint8_t* p = data.data() + i * ls;
  const uint32_t line = spec.first_line + static_cast<uint32_t>(i);
  Spec other = spec;
  switch (kind) {
    case 0:  // the previous generation of the same line
      other.generation = spec.generation - 1;
      FillLine(other, line, p);
      break;
    case 1:  // a whole line of another index of the same buffer
      FillLine(spec, line + 1 + static_cast<uint32_t>(rng.Below(1000)), p);
      break;
    case 2:  // the same line of another buffer
      other.buffer_id = spec.buffer_id + 1 + static_cast<uint32_t>(rng.Below(100));
      FillLine(other, line, p);
      break;
    case 3: {  // the first half new, the second half the previous generation
      other.generation = spec.generation + 1;
      std::vector<uint8_t> old(ls);
      FillLine(other, line, old.data());
      std::memcpy(p + ls / 2, old.data() + ls / 2, ls / 2);
      break;
    }
    case 4:
      std::memset(p, 0, ls);
      break;
    case 5:
      for (uint32_t b = 0; b < ls; ++b) p[b] = static_cast<uint8_t>(rng.Next());
      break;
    case 6: {  // one bit anywhere in the line
      const uint64_t bit = rng.Below(uint64_t{ls} * 8);
      p[bit / 8] = static_cast<uint8_t>(p[bit / 8] ^ (1u << (bit % 8)));
      break;
    }
    case 7:  // a valid header, every body word wrong
      for (uint32_t b = 16; b < ls; ++b) p[b] = static_cast<uint8_t>(~p[b]);
      break;
    case 8:  // a whole valid line of another run
      other.seed = spec.seed + 1;
      FillLine(other, line, p);
      break;
    default:
      break;
  }
}

/// The cases: `count` random specs (seeds, every line size, buffer ids and generations
/// past 16 bits, first_line near 2^32 so that line indices wrap), each clean and with
/// damage at the first line, the last line, random lines, runs of lines and every line.
inline std::vector<PathCase> MakeCases(uint64_t seed, int count) {
  static const uint64_t kSeeds[] = {0, 1, 0xDEADBEEFCAFEF00Dull, ~uint64_t{0}, 42};
  static const uint32_t kFirstLines[] = {0, 1, 7, 4095, 1u << 20, 0xFFFFFFF0u, 0xFFFFFFFFu};
  CaseRng rng(seed);
  std::vector<PathCase> cases;
  for (int c = 0; c < count; ++c) {
    Spec spec;
    spec.seed = c % 3 == 0 ? kSeeds[rng.Below(5)] : rng.Next();
    spec.line_size = 16u << rng.Below(9);  // 16 .. 4096
    spec.buffer_id = static_cast<uint32_t>(rng.Below(4) == 0 ? rng.Next() : rng.Below(0x10000));
    spec.generation = static_cast<uint32_t>(rng.Below(4) == 0 ? rng.Next() : rng.Below(0x10000));
    spec.first_line =
        rng.Below(2) == 0 ? kFirstLines[rng.Below(7)] : static_cast<uint32_t>(rng.Next());
    // Up to 64 KiB, at least 1 line; often not a multiple of any vector block.
    const size_t max_lines = std::max<size_t>(1, (size_t{64} << 10) / spec.line_size);
    const size_t lines = 1 + rng.Below(std::min<size_t>(max_lines, 67));
    std::ostringstream name;
    name << "seed=" << spec.seed << " line_size=" << spec.line_size << " buffer=" << spec.buffer_id
         << " generation=" << spec.generation << " first_line=" << spec.first_line
         << " lines=" << lines;
    const std::vector<uint8_t> clean = Filled(spec, lines);
    cases.push_back({name.str() + " clean", spec, clean});
    for (int kind = 0; kind < kDamageKinds; ++kind) {
      PathCase first{name.str() + " " + DamageName(kind) + " at first and last", spec, clean};
      Damage(spec, first.data, 0, kind, rng);
      Damage(spec, first.data, lines - 1, kind, rng);
      cases.push_back(std::move(first));
      PathCase some{name.str() + " " + DamageName(kind) + " at random lines", spec, clean};
      for (size_t n = 0; n < 1 + lines / 8; ++n)
        Damage(spec, some.data, rng.Below(lines), kind, rng);
      cases.push_back(std::move(some));
    }
    PathCase run{name.str() + " a run of mixed damage", spec, clean};
    const size_t from = rng.Below(lines);
    for (size_t i = from; i < std::min(lines, from + 5); ++i)
      Damage(spec, run.data, i, static_cast<int>(rng.Below(kDamageKinds)), rng);
    cases.push_back(std::move(run));
    PathCase every{name.str() + " every line damaged", spec, clean};
    for (size_t i = 0; i < lines; ++i)
      Damage(spec, every.data, i, static_cast<int>(rng.Below(kDamageKinds)), rng);
    cases.push_back(std::move(every));
  }
  return cases;
}

inline std::string Describe(const Finding& f) {
  std::ostringstream s;
  s << "{line " << f.line << " class " << static_cast<int>(f.cls) << " found_buffer "
    << f.found_buffer << " found_generation " << f.found_generation << " found_line "
    << f.found_line << " good_words " << f.good_words << "}";
  return s.str();
}

inline bool SameFinding(const Finding& a, const Finding& b) {
  return a.line == b.line && a.cls == b.cls && a.found_buffer == b.found_buffer &&
         a.found_generation == b.found_generation && a.found_line == b.found_line &&
         a.good_words == b.good_words;
}

/// The scalar engine's result of checking `c`.
struct CheckResult {
  size_t ok = 0;
  std::vector<Finding> findings;
};

inline CheckResult ScalarCheck(const PathCase& c) {
  CheckResult r;
  r.ok = Check(c.spec, c.data.data(), c.data.size(),
               [&](const Finding& f) { r.findings.push_back(f); });
  return r;
}

/// Compares `path` with the scalar engine on `c`: FastCheck's ok count and every
/// Finding (and the ok and finding counts with the data 8-byte aligned), MatchingLines, and
/// FastFill's bytes (written at an offset of 8 bytes into a junk-filled buffer, with a partial line
/// after it that must stay untouched). Returns "" if all are identical, else what differs.
inline std::string CompareWithScalar(const PathCase& c, Path path) {
  std::ostringstream err;
  const CheckResult want = ScalarCheck(c);
  CheckResult got;
  got.ok = FastCheck(
      c.spec, c.data.data(), c.data.size(), [&](const Finding& f) { got.findings.push_back(f); },
      path);
  if (got.ok != want.ok) err << "ok " << got.ok << " != scalar " << want.ok << "; ";
  if (got.findings.size() != want.findings.size())
    err << got.findings.size() << " findings != scalar " << want.findings.size() << "; ";
  for (size_t i = 0; i < std::min(got.findings.size(), want.findings.size()); ++i) {
    if (!SameFinding(got.findings[i], want.findings[i])) {
      err << "finding " << i << ' ' << Describe(got.findings[i]) << " != scalar "
          << Describe(want.findings[i]) << "; ";
      break;
    }
  }
  // The same data at an address that is only 8-byte aligned.
  std::vector<uint8_t> shifted(c.data.size() + 8);
  std::memcpy(shifted.data() + 8, c.data.data(), c.data.size());
  CheckResult unaligned;
  unaligned.ok = FastCheck(
      c.spec, shifted.data() + 8, c.data.size(),
      [&](const Finding& f) { unaligned.findings.push_back(f); }, path);
  if (unaligned.ok != want.ok || unaligned.findings.size() != want.findings.size())
    err << "unaligned: ok " << unaligned.ok << ", " << unaligned.findings.size()
        << " findings != scalar " << want.ok << ", " << want.findings.size() << "; ";
  const size_t lines = c.data.size() / c.spec.line_size;
  const size_t want_prefix =
      want.findings.empty() ? lines : want.findings.front().line - c.spec.first_line;
  const size_t got_prefix = MatchingLines(c.spec, c.data.data(), lines, path);
  if (got_prefix != want_prefix)
    err << "MatchingLines " << got_prefix << " != scalar " << want_prefix << "; ";

  const size_t bytes = c.data.size();
  std::vector<uint8_t> fast(bytes + 8 + 8, 0xA5);
  std::vector<uint8_t> scalar(fast);
  FastFill(c.spec, fast.data() + 8, bytes + 8, path);  // + 8: a partial line, untouched
  Fill(c.spec, scalar.data() + 8, bytes + 8);
  if (fast != scalar) {
    size_t at = 0;
    while (fast[at] == scalar[at]) ++at;
    err << "FastFill differs from Fill at byte " << at << " (offset 8); ";
  }
  return err.str();
}

}  // namespace dmahil::pattern::testing
