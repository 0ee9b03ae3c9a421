#include "controller/run/expectations.h"

#include <gtest/gtest.h>

namespace dmahil::controller {
namespace {

v1::FixtureResult Result(const std::string& fixture, v1::Verdict verdict, v1::Diagnosis diagnosis,
                         v1::IoPath path) {
  v1::FixtureResult r;
  r.set_board("b");
  r.set_fixture(fixture);
  r.set_verdict(verdict);
  r.set_diagnosis(diagnosis);
  r.set_io_path(path);
  return r;
}

// `expect` alone is met by any one failing fixture; a fixture the board names must fail
// itself, on the side of the I/O it names.
TEST(CheckExpectations, EachNamedFixtureMustFailOnItsIoPath) {
  LoadedFarm farm;
  farm.boards.emplace_back();
  v1::FarmBoard& e = farm.boards.back().entry;
  e.set_name("b");
  e.set_expect("missing-maintenance");
  v1::FixtureExpectation* pv = e.add_expect_fixture();
  pv->set_fixture("pv-block-4k");
  pv->set_io_path("read");
  e.add_expect_fixture()->set_fixture("pv-block-64k-sg");
  constexpr auto kFail = v1::VERDICT_FAIL;
  constexpr auto kMissing = v1::DIAGNOSIS_MISSING_MAINTENANCE;

  std::vector<v1::FixtureResult> results = {
      Result("foreign-to-device", kFail, kMissing, v1::IO_PATH_UNSPECIFIED),
      Result("pv-block-4k", kFail, kMissing, v1::IO_PATH_READ),
      Result("pv-block-64k-sg", kFail, kMissing, v1::IO_PATH_WRITE)};
  EXPECT_EQ(CheckExpectations(farm, results), std::vector<std::string>{});

  results[1].set_io_path(v1::IO_PATH_WRITE);
  results[2].set_verdict(v1::VERDICT_PASS);
  results[2].set_diagnosis(v1::DIAGNOSIS_NONE);
  EXPECT_EQ(CheckExpectations(farm, results),
            (std::vector<std::string>{
                "b / pv-block-4k: failed on the write path, expected the read path",
                "b / pv-block-64k-sg: pass; expected to fail with missing-maintenance"}));

  results.pop_back();
  results[1].set_io_path(v1::IO_PATH_READ);
  EXPECT_EQ(CheckExpectations(farm, results),
            (std::vector<std::string>{
                "b / pv-block-64k-sg: no result; expected to fail with missing-maintenance"}));
}

}  // namespace
}  // namespace dmahil::controller
