#include "controller/run/expectations.h"

#include <fmt/format.h>

#include "common/fault_catalogue.h"
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
    for (const v1::FixtureExpectation& e : b.entry.expect_fixture()) {
      const v1::FixtureResult* got = nullptr;
      for (const v1::FixtureResult& r : results)
        if (r.board() == b.entry.name() && r.fixture() == e.fixture()) got = &r;
      if (got == nullptr) {
        misses.push_back(fmt::format("{} / {}: no result; expected to fail with {}", b.entry.name(),
                                     e.fixture(), expect));
      } else if (got->verdict() != v1::VERDICT_FAIL) {
        misses.push_back(fmt::format("{} / {}: {}; expected to fail with {}", b.entry.name(),
                                     e.fixture(), report::VerdictName(got->verdict()), expect));
      } else if (!e.io_path().empty() && IoPathName(got->io_path()) != e.io_path()) {
        const std::string_view path = IoPathName(got->io_path());
        misses.push_back(fmt::format("{} / {}: failed on the {} path, expected the {} path",
                                     b.entry.name(), e.fixture(), path.empty() ? "unnamed" : path,
                                     e.io_path()));
      }
    }
  }
  return misses;
}

}  // namespace dmahil::controller
