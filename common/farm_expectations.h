// A farm board's `expect` (farm.proto FarmBoard.expect) checked against the fault catalogue
// (common/fault_catalogue.h) before anything runs.
#pragma once

#include <string>
#include <vector>

#include "common/fault_catalogue.h"
#include "common/validate.h"

namespace dmahil {

/// Checks every farm board's `expect` against the fault catalogue (common/fault_catalogue.h)
/// before anything runs: it must name a diagnosis a failing fixture can carry
/// (ParseDiagnosis: "stale-line", "missing-maintenance", ...), and on a board with faults
/// (a virtual board's `faults`, or the `dmahil.faults=N` dmahil.ko mask in a qemu-xen
/// board's dom0_args) it must be the diagnosis the catalogue gives one of those faults on
/// that board's class (FaultInfo::Diagnosis), each of which must be able to manifest there
/// (FaultInfo::cannot_manifest). Returns one "<farm file>:<line>:<col>: board[i].expect:
/// ..." line per problem, in farm order; empty if all is well.
/// `class_of` says whether a board shows maintenance faults as stale lines (the
/// controller's board kinds know: controller/run/board_kind.h).
std::vector<std::string> FarmExpectationProblems(const LoadedFarm& farm,
                                                 const BoardClassFn& class_of);

/// FarmExpectationProblems as an exception: throws ConfigError with every line.
void ValidateFarmExpectations(const LoadedFarm& farm, const BoardClassFn& class_of);

}  // namespace dmahil
