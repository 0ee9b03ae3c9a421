#include "controller/lab/crash_detector.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace dmahil::lab {

namespace {

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

bool Contains(std::string_view s, std::string_view needle) {
  return s.find(needle) != std::string_view::npos;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() &&
         (std::isspace(static_cast<unsigned char>(s.front())) != 0 || s.front() == '\0')) {
    s.remove_prefix(1);
  }
  return s;
}

// Strips one "[...]" group made of digits, spaces and ".:-TC+" (a printk or Xen timestamp,
// a printk caller id such as "[    T1]" or "[  C2]"). Returns false if there is none.
bool StripBracketGroup(std::string_view& s) {
  if (s.empty() || s.front() != '[') return false;
  const size_t close = s.find(']');
  if (close == std::string_view::npos || close > 40 || close < 2) return false;
  for (const char c : s.substr(1, close - 1)) {
    if (std::isdigit(static_cast<unsigned char>(c)) == 0 && c != ' ' && c != '.' && c != ':' &&
        c != '-' && c != 'T' && c != 'C' && c != '+') {
      return false;
    }
  }
  s = TrimLeft(s.substr(close + 1));
  return true;
}

// "(XEN) " or "(d12) " console prefixes; sets `xen` for the former.
bool StripConsolePrefix(std::string_view& s, bool& xen) {
  if (StartsWith(s, "(XEN)")) {
    xen = true;
    s = TrimLeft(s.substr(5));
    return true;
  }
  if (StartsWith(s, "(d") && s.size() > 3) {
    size_t i = 2;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) != 0) ++i;
    if (i > 2 && i < s.size() && s[i] == ')') {
      s = TrimLeft(s.substr(i + 1));
      return true;
    }
  }
  return false;
}

// "<3>" printk level.
bool StripLogLevel(std::string_view& s) {
  if (s.size() >= 3 && s[0] == '<' && std::isdigit(static_cast<unsigned char>(s[1])) != 0) {
    const size_t close = s.find('>');
    if (close != std::string_view::npos && close <= 4) {
      s = TrimLeft(s.substr(close + 1));
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<CrashMatch> ClassifyConsoleLine(std::string_view line) {
  bool xen = false;
  std::string_view m = TrimLeft(line);
  StripConsolePrefix(m, xen);
  StripLogLevel(m);
  for (int i = 0; i < 2 && StripBracketGroup(m); ++i) {
  }
  while (!m.empty() && (m.back() == ' ' || m.back() == '\r')) m.remove_suffix(1);

  using S = CrashSeverity;
  // Fatal.
  if (StartsWith(m, "Kernel panic - not syncing")) return CrashMatch{S::kFatal, "linux-panic"};
  if (Contains(m, "Internal error: Oops")) return CrashMatch{S::kFatal, "linux-oops"};
  if (Contains(m, "Unable to handle kernel")) return CrashMatch{S::kFatal, "linux-bad-access"};
  if (StartsWith(m, "BUG: ")) return CrashMatch{S::kFatal, "linux-bug"};
  if (Contains(m, "SError Interrupt")) return CrashMatch{S::kFatal, "arm64-serror"};
  if (xen && Contains(m, "Panic on CPU")) return CrashMatch{S::kFatal, "xen-panic"};
  if (xen && m.size() == 40 && std::all_of(m.begin(), m.end(), [](char c) { return c == '*'; })) {
    return CrashMatch{S::kFatal, "xen-panic-banner"};
  }
  if (Contains(m, "Xen BUG at")) return CrashMatch{S::kFatal, "xen-bug"};
  if (xen && Contains(m, "FATAL TRAP")) return CrashMatch{S::kFatal, "xen-fatal-trap"};
  if (StartsWith(m, "Assertion '") && Contains(m, "' failed at")) {
    return CrashMatch{S::kFatal, "xen-assert"};
  }
  // Warnings.
  if (StartsWith(m, "WARNING: CPU: ") && Contains(m, " at ")) {
    return CrashMatch{S::kWarning, "linux-warning"};
  }
  if (xen && StartsWith(m, "Xen WARN at")) return CrashMatch{S::kWarning, "xen-warning"};
  // Context.
  if (StartsWith(m, "Call trace:")) return CrashMatch{S::kContext, "linux-call-trace"};
  if (xen && StartsWith(m, "Xen call trace:")) return CrashMatch{S::kContext, "xen-call-trace"};
  return std::nullopt;
}

std::string ConsoleCrash::Summary() const {
  return fmt::format("{} at console line {} (+{} ms): {}", kind, line.number, line.ms, line.text);
}

std::string ConsoleCrash::FormatExcerpt() const {
  std::string out;
  for (const ConsoleLine& l : excerpt) {
    if (!out.empty()) out += '\n';
    out += fmt::format("[{:>10} ms] {}", l.ms, l.text);
  }
  return out;
}

bool CrashRecorder::Add(const ConsoleLine& line) {
  const std::optional<CrashMatch> match = ClassifyConsoleLine(line.text);
  bool first_fatal = false;
  if (crash_) {
    if (after_ < kLinesAfter) {
      crash_->excerpt.push_back(line);
      ++after_;
    }
  } else if (match && match->severity == CrashSeverity::kFatal) {
    ConsoleCrash crash;
    crash.kind = std::string(match->kind);
    crash.line = line;
    crash.excerpt.assign(before_.begin(), before_.end());
    crash.excerpt.push_back(line);
    crash_ = std::move(crash);
    after_ = 0;
    first_fatal = true;
  }
  if (match && match->severity == CrashSeverity::kWarning) {
    ++warning_count_;
    if (warnings_.size() < kMaxWarnings) {
      warnings_.push_back(ConsoleCrash{std::string(match->kind), line, {}});
    }
  }
  before_.push_back(line);
  if (before_.size() > kLinesBefore) before_.pop_front();
  return first_fatal;
}

void CrashRecorder::Clear() {
  crash_.reset();
  after_ = 0;
  warnings_.clear();
  warning_count_ = 0;
}

}  // namespace dmahil::lab
