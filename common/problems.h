// Collecting the problems of a configuration file (board, fixture, farm) so that one
// refusal lists every one of them, each as "<file>:<line>:<col>: <what>" (common/config.h
// SourceMap locates the fields). Generic: the rules themselves live with what they check
// (common/validate.h for boards, fixtures and farms; each lab backend for its wiring).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "common/config.h"

namespace dmahil {

/// The problems found in one file. Each is located at a field path of the file's message
/// (SourceMap::Locate syntax, e.g. "board[0].wiring.console.baud"); Text() and ThrowIfAny()
/// give them in file order (line, then column; equal positions keep their order).
/// `source` must outlive the Problems.
class Problems {
 public:
  explicit Problems(const SourceMap& source) : source_(source) {}

  /// Adds "<Where(field_path)>: <what formatted with args>". Throws std::invalid_argument if
  /// `field_path` names no field of the file's message type (a programming error).
  template <class... Args>
  void Add(std::string_view field_path, fmt::format_string<Args...> what, Args&&... args) {
    AddText(field_path, fmt::format(what, std::forward<Args>(args)...));
  }

  /// Adds "<Where(field_path)>: <what>" (`what` already formatted).
  void AddText(std::string_view field_path, std::string_view what);

  /// The locations of the file's fields.
  const SourceMap& source() const { return source_; }

  /// Throws ConfigError(Text()) if any problem was added.
  void ThrowIfAny();

  bool empty() const { return lines_.empty(); }

  /// Every problem, one per line, in file order; "" when there is none.
  std::string Text();

 private:
  struct Line {
    int line;
    int column;
    std::string text;
  };
  const SourceMap& source_;
  std::vector<Line> lines_;
};

/// Things two boards of one farm cannot share (a GPIO line, a serial device, a USB engine,
/// a PDU outlet, an agent endpoint, a forwarded host port): the first field to claim a
/// resource owns it, a later claim of the same resource is a problem naming the first.
/// `source` (the farm file's) must outlive the Claims.
class Claims {
 public:
  explicit Claims(const SourceMap& source) : source_(source) {}

  /// Claims resource `what` of kind `kind` (e.g. "GPIO line", "gpiochip0:17") for the
  /// field `field_path`. If it was claimed before, adds to `problems` at `field_path`:
  /// "<kind> <what> is already used by <first field> at <file:line:col of first field>".
  void Claim(Problems& problems, std::string_view kind, std::string_view what,
             std::string_view field_path);

 private:
  const SourceMap& source_;
  std::map<std::pair<std::string, std::string>, std::string> used_;  // (kind, what) -> field
};

}  // namespace dmahil
