#include "controller/report/formats.h"

#include "controller/report/junit.h"
#include "controller/report/results_json.h"
#include "controller/report/write_file.h"

namespace dmahil::report {

const std::vector<ReportFormat>& ReportFormats() {
  static const std::vector<ReportFormat> formats = {
      {"junit", "junit.xml", &RenderJunit},
      {"json", "results.json", &RenderResultsJson},
  };
  return formats;
}

std::vector<std::filesystem::path> WriteReports(const std::filesystem::path& out,
                                                const std::vector<v1::FixtureResult>& results,
                                                const RunInfo& run) {
  std::vector<std::filesystem::path> written;
  for (const ReportFormat& f : ReportFormats()) {
    written.push_back(out / f.file);
    WriteFileAtomically(written.back(), f.render(results, run));
  }
  return written;
}

}  // namespace dmahil::report
