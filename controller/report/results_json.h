// results.json: the machine-readable record of a run (docs/architecture.md §11), written with
// nlohmann-json.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "controller/report/run_info.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::report {

/// Renders `results` as results.json, keys in this order:
///   {"seed": N, "farm": "...", "boards": [{name, kernel, hypervisor}] (what each board
///    booted, RunInfo::software, in farm order), "results": [ {board, fixture, verdict
///    ("pass"|"fail"|"error"), diagnosis
///    ("stale-line"|"wrong-bus-address"|"stray-dma"|"never-landed"|"torn-line"|null), detail,
///    mismatching_lines, lines_checked, displacement (bytes, signed; only for wrong-bus-address),
///    displacement_hex ("+0xc0000000", "-0x1000"; likewise), iterations, failed_iteration,
///    segments: [{page, pfn, bfn, dma_addr, expected_dma_addr (hex strings "0x..."), foreign,
///    bounced}], line_map: ["..."]} ]}
/// Records in input order, 2-space indent, trailing newline, no timestamps: equal inputs
/// give byte-identical output. Invalid UTF-8 in strings is replaced by U+FFFD.
std::string RenderResultsJson(const std::vector<v1::FixtureResult>& results, const RunInfo& run);

/// RenderResultsJson written to `path` (atomically). Throws std::runtime_error on I/O
/// failure.
void WriteResultsJson(const std::filesystem::path& path,
                      const std::vector<v1::FixtureResult>& results, const RunInfo& run);

}  // namespace dmahil::report
