// Names and number formats shared by every report (JUnit, results.json, summary).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dmahil/v1/pattern.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::report {

/// Kebab-case name of a diagnosis (docs/architecture.md §6): "stale-line", "wrong-bus-address",
/// "stray-dma", "never-landed", "torn-line"; "none" for DIAGNOSIS_NONE and any value
/// this build does not know.
std::string_view DiagnosisName(v1::Diagnosis diagnosis);

/// Verdict as reports count it: PASS, FAIL and NOT_APPLICABLE as they are;
/// VERDICT_UNSPECIFIED (a result nobody decided) and anything unknown is an error, never a
/// pass.
v1::Verdict EffectiveVerdict(v1::Verdict verdict);

/// Lower-case name of EffectiveVerdict(verdict): "pass", "fail", "n/a" or "error".
std::string_view VerdictName(v1::Verdict verdict);

/// "0x" and lower-case hex digits, e.g. Hex(0xC0000000) == "0xc0000000".
std::string Hex(uint64_t value);

/// A signed byte displacement in hex with its sign always shown:
/// +0xc0000000, -0x1000, +0x0. Exact for every int64_t, INT64_MIN included.
std::string SignedHex(int64_t bytes);

/// The character a line map uses for a checked line of class `cls`:
/// '.' ok, 'S' stale, 'M' misplaced, 'T' torn, '0' zero, 'X' corrupt, 'B' bus error,
/// '?' unspecified or unknown.
char LineGlyph(v1::LineClass cls);

/// One line explaining the glyphs of LineGlyph, for report legends.
std::string_view LineMapLegend();

}  // namespace dmahil::report
