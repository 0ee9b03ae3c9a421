#include "controller/report/names.h"

#include <fmt/format.h>

namespace dmahil::report {

std::string_view DiagnosisName(v1::Diagnosis diagnosis) {
  switch (diagnosis) {
    case v1::DIAGNOSIS_STALE_LINE:
      return "stale-line";
    case v1::DIAGNOSIS_WRONG_BUS_ADDRESS:
      return "wrong-bus-address";
    case v1::DIAGNOSIS_STRAY_DMA:
      return "stray-dma";
    case v1::DIAGNOSIS_NEVER_LANDED:
      return "never-landed";
    case v1::DIAGNOSIS_TORN_LINE:
      return "torn-line";
    case v1::DIAGNOSIS_MISSING_MAINTENANCE:
      return "missing-maintenance";
    case v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE:
      return "misaddressed-maintenance";
    default:
      return "none";
  }
}

v1::Verdict EffectiveVerdict(v1::Verdict verdict) {
  switch (verdict) {
    case v1::VERDICT_PASS:
    case v1::VERDICT_FAIL:
    case v1::VERDICT_NOT_APPLICABLE:
      return verdict;
    default:
      return v1::VERDICT_ERROR;
  }
}

std::string_view VerdictName(v1::Verdict verdict) {
  switch (EffectiveVerdict(verdict)) {
    case v1::VERDICT_PASS:
      return "pass";
    case v1::VERDICT_FAIL:
      return "fail";
    case v1::VERDICT_NOT_APPLICABLE:
      return "n/a";
    default:
      return "error";
  }
}

std::string Hex(uint64_t value) { return fmt::format("{:#x}", value); }

std::string SignedHex(int64_t bytes) {
  // Magnitude computed in unsigned arithmetic so INT64_MIN does not overflow.
  const uint64_t magnitude =
      bytes < 0 ? ~static_cast<uint64_t>(bytes) + 1 : static_cast<uint64_t>(bytes);
  return fmt::format("{}{:#x}", bytes < 0 ? '-' : '+', magnitude);
}

char LineGlyph(v1::LineClass cls) {
  switch (cls) {
    case v1::LINE_OK:
      return '.';
    case v1::LINE_STALE:
      return 'S';
    case v1::LINE_MISPLACED:
      return 'M';
    case v1::LINE_TORN:
      return 'T';
    case v1::LINE_ZERO:
      return '0';
    case v1::LINE_CORRUPT:
      return 'X';
    case v1::LINE_BUS_ERROR:
      return 'B';
    default:
      return '?';
  }
}

std::string_view LineMapLegend() {
  return ". ok  S stale  M misplaced  T torn  0 zero  X corrupt  B bus error";
}

}  // namespace dmahil::report
