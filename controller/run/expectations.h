// Self-test farms: a farm board may say what its failing fixtures must report
// (`expect: "wrong-bus-address"`), e.g. a virtual board with an injected fault. Checking
// a campaign against those expectations proves the harness still catches each bug class.
#pragma once

#include <string>
#include <vector>

#include "common/farm_expectations.h"  // FarmExpectationProblems, checked before a run
#include "common/validate.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// Returns one line per unmet expectation (empty: all met). A board without `expect`
/// must pass every fixture; a board with one must fail at least one fixture, and every
/// failing fixture of it must carry that diagnosis (report::DiagnosisName). ERROR
/// verdicts never meet an expectation. VERDICT_NOT_APPLICABLE results count as neither a
/// pass of a clean board nor a detection on a faulty one: they are skipped. Each of a
/// board's expect_fixture must have failed (with `expect`, as every failure of the board),
/// on its io_path if it names one.
std::vector<std::string> CheckExpectations(const LoadedFarm& farm,
                                           const std::vector<v1::FixtureResult>& results);

}  // namespace dmahil::controller
