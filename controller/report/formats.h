// The report files of a run (docs/architecture.md §11): every format a `dmahil run` writes
// into its output folder, in one table. A new format (HTML, KCIDB, ...) is one renderer file
// in this folder plus one line in formats.cc.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "controller/report/run_info.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::report {

/// One report format.
struct ReportFormat {
  std::string_view name;  // e.g. "junit"
  std::string_view file;  // its file in the output folder, e.g. "junit.xml"
  /// The whole file's contents for `results` (farm order) of the run `run`.
  std::string (*render)(const std::vector<v1::FixtureResult>& results, const RunInfo& run);
};

/// Every format, in the order WriteReports writes them.
const std::vector<ReportFormat>& ReportFormats();

/// Renders every format and writes each into `out` (WriteFileAtomically: a crash leaves
/// no half-written report). Returns the files written, in ReportFormats() order. Throws
/// std::runtime_error naming the file that could not be written.
std::vector<std::filesystem::path> WriteReports(const std::filesystem::path& out,
                                                const std::vector<v1::FixtureResult>& results,
                                                const RunInfo& run);

}  // namespace dmahil::report
