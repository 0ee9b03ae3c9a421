// JUnit XML for CI systems (docs/architecture.md §11), written with pugixml.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "controller/report/run_info.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::report {

/// Renders `results` as JUnit XML: a <testsuites name="<farm>"> root with tests, failures
/// and errors counts; one <testsuite name="<board>"> per board, in order of first
/// appearance, with the same counts and <properties> seed and farm; one
/// <testcase classname="<board>" name="<fixture>"> per result, in input order. A FAIL holds
/// <failure message="<diagnosis>: <detail>" type="<diagnosis>"> whose text is the counts,
/// displacement, segment table and line map; an ERROR (or an unset verdict) holds
/// <error message="<detail>">. No timestamps: equal inputs give equal bytes.
std::string RenderJunit(const std::vector<v1::FixtureResult>& results, const RunInfo& run);

/// RenderJunit written to `path` (atomically). Throws std::runtime_error on I/O failure.
void WriteJunit(const std::filesystem::path& path, const std::vector<v1::FixtureResult>& results,
                const RunInfo& run);

}  // namespace dmahil::report
