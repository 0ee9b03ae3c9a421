// Every path of common/pattern_fast.h against the scalar engine of common/pattern.h:
// the same bytes, the same ok counts and the same Findings (the cases are in
// common/pattern_paths_cases.h; ci/pattern-aarch64.sh runs them on aarch64).
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/pattern.h"
#include "common/pattern_fast.h"
#include "common/pattern_paths_cases.h"

namespace dmahil::pattern {
namespace {

using testing::CompareWithScalar;
using testing::MakeCases;
using testing::PathCase;

// The format itself (common/pattern.h's header comment), pinned: no path or refactoring
// may change a single word of a line.
TEST(PatternFormat, WordsArePinned) {
  constexpr uint64_t seed = 0x0123456789ABCDEFull;
  constexpr uint64_t w0 = HeaderWord0(seed, 0x1234, 0xBEEF);
  static_assert(w0 >> 48 == kMagic);
  static_assert(((w0 >> 32) & 0xFFFF) == 0x1234 && ((w0 >> 16) & 0xFFFF) == 0xBEEF);
  EXPECT_EQ(w0, 0xD4A11234BEEF0000ull | detail::SeedTag(seed));
  EXPECT_EQ(detail::SeedTag(seed), 0x8FA9u);
  EXPECT_EQ(LineWord(seed, w0, 77, 1), 0x0000004D00000000ull | detail::Check32(w0, 77));
  EXPECT_EQ(detail::Check32(w0, 77), 0x8AA4F67Du);
  EXPECT_EQ(LineWord(seed, w0, 77, 2), 0x766E7689DEB22469ull);
  EXPECT_EQ(LineWord(seed, w0, 0xFFFFFFFFu, 511), 0x7718D972219EE9B3ull);
  // The scalar engine's words are constexpr (the firmware may build tables at compile time).
  static_assert(LineWord(seed, w0, 77, 2) == 0x766E7689DEB22469ull);
  static_assert(LineWord(seed, w0, 0xFFFFFFFFu, 511) == 0x7718D972219EE9B3ull);
}

TEST(PatternPaths, ScalarFirstAndTheDefaultIsAvailable) {
  const std::span<const Path> paths = AvailablePaths();
  ASSERT_FALSE(paths.empty());
  EXPECT_EQ(paths.front(), Path::kScalar);
  EXPECT_NE(std::find(paths.begin(), paths.end(), BestPath()), paths.end());
#if defined(__x86_64__)
  EXPECT_NE(std::find(paths.begin(), paths.end(), Path::kSse2), paths.end());
#endif
#if defined(__aarch64__)
  EXPECT_NE(std::find(paths.begin(), paths.end(), Path::kNeon), paths.end());
#endif
}

TEST(PatternPaths, RefusesAnUnavailablePathAndABadLineSize) {
  std::vector<uint8_t> buf(256);
  Spec spec;
#if defined(__aarch64__)
  const Path absent = Path::kAvx2;
#else
  const Path absent = Path::kNeon;
#endif
  EXPECT_THROW(FastFill(spec, buf.data(), buf.size(), absent), std::invalid_argument);
  EXPECT_THROW(MatchingLines(spec, buf.data(), 4, absent), std::invalid_argument);
  spec.line_size = 48;
  EXPECT_THROW(FastFill(spec, buf.data(), buf.size()), std::invalid_argument);
  EXPECT_THROW(FastCheck(spec, buf.data(), buf.size(), [](const Finding&) {}),
               std::invalid_argument);
}

// The damaged cases must really exercise every class the classifier has, else the
// comparison below proves little.
TEST(PatternPaths, CasesCoverEveryLineClass) {
  std::set<LineClass> seen;
  size_t findings = 0;
  for (const PathCase& c : MakeCases(1, 60)) {
    const testing::CheckResult r = testing::ScalarCheck(c);
    findings += r.findings.size();
    for (const Finding& f : r.findings) seen.insert(f.cls);
  }
  EXPECT_GT(findings, 1000u);
  for (LineClass cls : {LineClass::kStale, LineClass::kMisplaced, LineClass::kTorn,
                        LineClass::kZero, LineClass::kCorrupt})
    EXPECT_EQ(seen.count(cls), 1u) << "no line of class " << static_cast<int>(cls);
}

class EveryPath : public ::testing::TestWithParam<Path> {};

TEST_P(EveryPath, SameBytesSameFindingsAsScalar) {
  int failures = 0;
  for (const PathCase& c : MakeCases(7, 400)) {
    const std::string diff = CompareWithScalar(c, GetParam());
    EXPECT_EQ(diff, "") << c.name;
    if (!diff.empty() && ++failures == 10) break;
  }
}

// 8 MiB and more: FastFill switches to non-temporal stores on x86.
TEST_P(EveryPath, LargeBuffersSameBytesAndFindingsAsScalar) {
  Spec spec{0xFEEDull, 9, 4, 0xFFFFF000u, 64};
  const size_t bytes = (size_t{8} << 20) + 3 * 64;
  std::vector<uint8_t> fast(bytes + 128), scalar(bytes + 128);
  uint8_t* f = fast.data() + (64 - reinterpret_cast<uintptr_t>(fast.data()) % 64);  // aligned
  uint8_t* s = scalar.data() + (64 - reinterpret_cast<uintptr_t>(scalar.data()) % 64);
  FastFill(spec, f, bytes, GetParam());
  Fill(spec, s, bytes);
  ASSERT_EQ(std::memcmp(f, s, bytes), 0);
  f[5 << 20] ^= 1;
  f[bytes - 1] = 0;
  std::vector<Finding> got;
  EXPECT_EQ(FastCheck(
                spec, f, bytes, [&](const Finding& x) { got.push_back(x); }, GetParam()),
            bytes / 64 - 2);
  std::vector<Finding> want;
  Check(spec, f, bytes, [&](const Finding& x) { want.push_back(x); });
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(want.size(), 2u);
  for (size_t i = 0; i < 2; ++i)
    EXPECT_TRUE(testing::SameFinding(got[i], want[i]))
        << testing::Describe(got[i]) << " vs " << testing::Describe(want[i]);
}

INSTANTIATE_TEST_SUITE_P(Pattern, EveryPath,
                         ::testing::ValuesIn(AvailablePaths().begin(), AvailablePaths().end()),
                         [](const ::testing::TestParamInfo<Path>& param) {
                           return std::string(PathName(param.param));
                         });

}  // namespace
}  // namespace dmahil::pattern
