// The bisection report: what a developer reads at 8 a.m. (text, printed and saved as
// <out>/bisect.txt) and what a CI system reads (<out>/bisect.json).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/bisect/bisection.h"

namespace dmahil::bisect {

/// What was bisected, for the report's header.
struct BisectContext {
  std::string tree;                        // "linux" or "xen"
  std::string repo;                        // path of the bisected tree
  std::string pinned;                      // "xen <rev>" / "linux <rev>", or "" if none pinned
  std::string board;                       // farm board name
  std::vector<std::string> fixtures;       // fixture names
  std::vector<std::string> revs;           // the revision list, good first, bad last
  std::map<size_t, std::string> subjects;  // subject lines of the revisions the report
                                           // names (steps, answer, untestable ones)
  double requested_confidence = 0;
  uint64_t seed = 0;
  std::string out_dir;
};

/// The model behind the numbers, in a few lines, printed with every sequential report.
std::string ExplainSequentialRule();

/// The human report: header, detection rate, one line per step (with its build, deploy
/// and board time), the answer with its confidence (or the range of untestable commits it
/// could be), runs and the time totals.
std::string RenderReport(const BisectContext& context, const BisectResult& result);

/// The same as JSON: {"first_bad": {...}, "confidence", "steps": [...], ...}; times in ms:
/// per step and in total "build_ms", "deploy_ms", "board_ms".
nlohmann::json ReportJson(const BisectContext& context, const BisectResult& result);

/// "good" / "bad" / "skip".
const char* VerdictName(Verdict verdict);

}  // namespace dmahil::bisect
