#include "controller/report/picture.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "controller/report/names.h"

namespace dmahil::report {
namespace {

constexpr size_t kRowWidth = 64;  // line-map characters per row

bool AllOk(const std::string& page) {
  return std::all_of(page.begin(), page.end(), [](char c) { return c == '.'; });
}

}  // namespace

bool SegmentWrong(const v1::SegmentReport& s) {
  return s.dma_addr() != s.expected_dma_addr() || s.unreachable() || s.write_refused();
}

std::string RenderSegmentTable(const v1::FixtureResult& result, size_t max_rows,
                               std::string_view indent) {
  if (result.segments().empty()) return "";
  const bool any_wrong =
      std::any_of(result.segments().begin(), result.segments().end(), SegmentWrong);
  std::vector<const v1::SegmentReport*> rows;
  for (const auto& s : result.segments())
    if (!any_wrong || SegmentWrong(s)) rows.push_back(&s);
  const size_t shown = std::min(rows.size(), max_rows);
  // Cells first, then columns as wide as their widest cell.
  std::vector<std::vector<std::string>> cells = {{"page", "pfn", "bfn", "dma_addr", "expected",
                                                  "flags", any_wrong ? "dma_addr - expected" : ""}};
  for (size_t i = 0; i < shown; ++i) {
    const v1::SegmentReport& s = *rows[i];
    std::string flags = s.foreign() ? "foreign" : "local";
    if (s.bounced()) flags += ",bounced";
    if (s.unreachable()) flags += ",unreachable";
    if (s.write_refused()) flags += ",write-refused";
    if (s.bfn_pfn_valid()) flags += ",bfn-pfn-valid";
    cells.push_back({fmt::format("{}", s.page()), Hex(s.pfn()), Hex(s.bfn()), Hex(s.dma_addr()),
                     Hex(s.expected_dma_addr()), flags,
                     s.dma_addr() != s.expected_dma_addr()
                         ? SignedHex(static_cast<int64_t>(s.dma_addr() - s.expected_dma_addr()))
                         : ""});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : cells) {
    std::string line(indent);
    for (size_t c = 0; c < row.size(); ++c) {
      if (c > 0) line += "  ";
      // Numbers right-aligned, the flags and difference left-aligned.
      line +=
          c < 5 ? fmt::format("{:>{}}", row[c], width[c]) : fmt::format("{:<{}}", row[c], width[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + '\n';
  }
  if (rows.size() > shown)
    out += fmt::format("{}... {} more {}segments not shown\n", indent, rows.size() - shown,
                       any_wrong ? "wrong " : "");
  if (any_wrong && rows.size() < static_cast<size_t>(result.segments_size()))
    out += fmt::format("{}({} of {} segments had the expected bus address)\n", indent,
                       static_cast<size_t>(result.segments_size()) - rows.size(),
                       result.segments_size());
  return out;
}

std::string RenderLineMap(const v1::FixtureResult& result, size_t max_pages,
                          std::string_view indent) {
  const auto& map = result.line_map();
  if (map.empty()) return "";
  std::vector<int> pages;
  const bool all = static_cast<size_t>(map.size()) <= max_pages;
  for (int i = 0; i < map.size(); ++i)
    if (all || !AllOk(map[i])) pages.push_back(i);
  const size_t shown = std::min(pages.size(), max_pages);
  std::string out;
  for (size_t k = 0; k < shown;) {
    // Consecutive pages with the same picture are drawn once: "pages 0-15".
    size_t last = k;
    while (last + 1 < shown && pages[last + 1] == pages[last] + 1 &&
           map[pages[last + 1]] == map[pages[k]])
      ++last;
    const int i = pages[k];
    const std::string& row = map[i];
    const std::string name = last == k
                                 ? fmt::format("page  {:>4}", i)
                                 : fmt::format("pages {:>4}", fmt::format("{}-{}", i, pages[last]));
    for (size_t at = 0; at == 0 || at < row.size(); at += kRowWidth) {
      const std::string label = at == 0 ? name : fmt::format("+{:>9}", at);
      out += fmt::format("{}{}  {}\n", indent, label, row.substr(at, kRowWidth));
    }
    k = last + 1;
  }
  const size_t clean = static_cast<size_t>(map.size()) - pages.size();
  const size_t more = pages.size() - shown;
  if (!all && (clean > 0 || more > 0))
    out += fmt::format("{}({} all-ok pages{} not shown)\n", indent, clean,
                       more > 0 ? fmt::format(" and {} more failing pages", more) : "");
  return out;
}

}  // namespace dmahil::report
