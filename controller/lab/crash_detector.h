// Crash detection on a board's serial console (docs/architecture.md §10): pure, line by line.
// ClassifyConsoleLine recognises the Linux and Xen crash reports; CrashRecorder keeps the
// first fatal one with an excerpt of the console around it, and records warnings.
//
// Patterns (matched on the message, after any "(XEN) "/"(dN) " console prefix, "<N>"
// log level, "[ 12.345678]" timestamp and "[ T123]" caller prefixes):
//   fatal   linux-panic          starts "Kernel panic - not syncing"
//           linux-oops           contains "Internal error: Oops"
//           linux-bad-access     contains "Unable to handle kernel" (NULL deref, paging)
//           linux-bug            starts "BUG: " (BUG(), KASAN, soft lockup, ...)
//           arm64-serror         contains "SError Interrupt"
//           xen-panic            "(XEN)" and contains "Panic on CPU"
//           xen-panic-banner     "(XEN)" and exactly 40 '*' (panic()'s banner; Xen's
//                                 other banners are longer)
//           xen-bug              contains "Xen BUG at"
//           xen-fatal-trap       "(XEN)" and contains "FATAL TRAP"
//           xen-assert           starts "Assertion '" and contains "' failed at"
//   warning linux-warning        starts "WARNING: CPU: " and contains " at " (WARN_ON)
//           xen-warning          "(XEN)" and starts "Xen WARN at"
//   context linux-call-trace     starts "Call trace:"; xen-call-trace "Xen call trace:"
//                                 (part of a report, neither fatal nor recorded)
// Fatal lines end console waits; warnings are only recorded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmahil::lab {

enum class CrashSeverity {
  kFatal,    // the kernel or hypervisor died (or is no longer trustworthy)
  kWarning,  // a WARN_ON: recorded, the board keeps running
  kContext,  // part of a report (a call trace): neither
};

/// What ClassifyConsoleLine recognised.
struct CrashMatch {
  CrashSeverity severity = CrashSeverity::kFatal;
  std::string_view kind;  // a stable name from the table above, e.g. "linux-panic"
};

/// Classifies one console line (without its line end). Pure; nullopt for ordinary lines.
std::optional<CrashMatch> ClassifyConsoleLine(std::string_view line);

/// One console line as received.
struct ConsoleLine {
  uint64_t number = 0;  // 1 for the first line since the console was opened
  uint64_t ms = 0;      // ms since the console was opened, when its first byte arrived
  std::string text;     // without the line end ("\r\n" or "\n")
};

/// A recognised crash (or warning) and the console around it.
struct ConsoleCrash {
  std::string kind;  // CrashMatch::kind
  ConsoleLine line;  // the line that matched
  /// Up to CrashRecorder::kLinesBefore lines before the match, the line, and up to
  /// kLinesAfter lines after it (growing as they arrive). Empty for warnings.
  std::vector<ConsoleLine> excerpt;

  /// "linux-panic at console line 812 (+10234 ms): Kernel panic - not syncing: ...".
  std::string Summary() const;
  /// The excerpt, one "[     12345 ms] text" line each, '\n'-separated.
  std::string FormatExcerpt() const;
};

/// Feeds console lines through ClassifyConsoleLine. Keeps the FIRST fatal crash with its
/// excerpt (later fatal lines only extend the excerpt), and up to kMaxWarnings warnings
/// (counting all). Pure, not thread-safe.
class CrashRecorder {
 public:
  static constexpr size_t kLinesBefore = 20;
  static constexpr size_t kLinesAfter = 40;
  static constexpr size_t kMaxWarnings = 32;

  /// Adds the next line; returns true if it is the first fatal line.
  bool Add(const ConsoleLine& line);
  const std::optional<ConsoleCrash>& crash() const { return crash_; }
  const std::vector<ConsoleCrash>& warnings() const { return warnings_; }
  uint64_t warning_count() const { return warning_count_; }
  /// Forgets the crash and the warnings (e.g. after a power cycle); keeps the context.
  void Clear();

 private:
  std::deque<ConsoleLine> before_;  // the last kLinesBefore lines
  std::optional<ConsoleCrash> crash_;
  size_t after_ = 0;  // lines added to crash_'s excerpt after its line
  std::vector<ConsoleCrash> warnings_;
  uint64_t warning_count_ = 0;
};

}  // namespace dmahil::lab
