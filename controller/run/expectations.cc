#include "controller/run/expectations.h"

#include <fmt/format.h>

#include "controller/report/names.h"

namespace dmahil::controller {

std::vector<std::string> CheckExpectations(const LoadedFarm& farm,
                                           const std::vector<v1::FixtureResult>& results) {
  std::vector<std::string> misses;
  for (const LoadedBoard& b : farm.boards) {
    const std::string& expect = b.entry.expect();
    size_t failing = 0;
    for (const v1::FixtureResult& r : results) {
      if (r.board() != b.entry.name()) continue;
      if (r.verdict() == v1::VERDICT_NOT_APPLICABLE) continue;  // neither a pass nor a detection
      if (r.verdict() == v1::VERDICT_ERROR) {
        misses.push_back(fmt::format("{} / {}: error: {}", r.board(), r.fixture(), r.detail()));
      } else if (r.verdict() == v1::VERDICT_FAIL) {
        ++failing;
        const std::string_view got = report::DiagnosisName(r.diagnosis());
        if (expect.empty())
          misses.push_back(fmt::format("{} / {}: failed ({}) on a board expected clean", r.board(),
                                       r.fixture(), got));
        else if (got != expect)
          misses.push_back(fmt::format("{} / {}: diagnosed {}, expected {}", r.board(), r.fixture(),
                                       got, expect));
      }
    }
    if (!expect.empty() && failing == 0)
      misses.push_back(fmt::format("{}: no fixture failed; expected {}", b.entry.name(), expect));
  }
  return misses;
}

}  // namespace dmahil::controller
