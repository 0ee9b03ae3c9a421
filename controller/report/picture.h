// Text pictures of a failing result, shared by the JUnit failure body and the summary:
// the DMA segments and the line map (docs/architecture.md §6: "a picture of the buffer").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "dmahil/v1/result.pb.h"

namespace dmahil::report {

/// True if the mapping audit flagged the segment: its bus address differs from the one
/// the board description gives, or the device cannot reach it.
bool SegmentWrong(const v1::SegmentReport& segment);

/// The result's segments as a table, each row prefixed by `indent` and ending in '\n':
/// page, pfn, bfn, dma_addr, expected_dma_addr (hex), foreign/bounced flags, and for a
/// segment whose dma_addr differs from the expected one, the signed difference.
/// If any segment is wrong only the wrong ones are listed. At most `max_rows` rows; the
/// rest are counted in a last line. Returns "" if the result has no segments.
std::string RenderSegmentTable(const v1::FixtureResult& result, size_t max_rows,
                               std::string_view indent);

/// The result's line map, one row per 4 KiB page ("page   3  ..SS....") with pages
/// longer than 64 lines folded over several rows, each row prefixed by `indent` and
/// ending in '\n'. If there are more than `max_pages` pages, only pages with a non-'.'
/// line are drawn (at most `max_pages`) and the rest are counted in a last line.
/// Returns "" if the result has no line map.
std::string RenderLineMap(const v1::FixtureResult& result, size_t max_pages,
                          std::string_view indent);

}  // namespace dmahil::report
