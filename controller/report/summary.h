// The human summary a run prints on stdout (docs/architecture.md §11: "a report a person can read
// in one minute"), written with fmt.
#pragma once

#include <string>
#include <vector>

#include "controller/report/run_info.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::report {

/// Renders the summary of a run, in this order:
///  - a header line naming the farm and the seed;
///  - a table, one row per result in input order, columns BOARD, FIXTURE, VERDICT
///    (PASS/FAIL/ERROR), DIAGNOSIS (kebab-case or "-"), DETAIL (one line, cut at about
///    70 characters with "...");
///  - the totals line "N passed, N failed, N errors";
///  - for each board with a failure or error, a section per failing result: the
///    diagnosis and what it usually means, the displacement in signed hex for
///    wrong-bus-address, the counts, the full detail, the wrong segments (at most 8)
///    and the line map (at most 16 pages);
///  - with run.segments, every result's pages (at most 8 per result): pfn, bfn, bus
///    address, expected bus address, foreign / bounced.
/// Plain ASCII apart from what the results contain; ends with '\n'. Deterministic.
std::string RenderSummary(const std::vector<v1::FixtureResult>& results, const RunInfo& run);

}  // namespace dmahil::report
