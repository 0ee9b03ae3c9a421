#include "controller/report/summary.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include <fmt/format.h>

#include "controller/report/names.h"
#include "controller/report/picture.h"

namespace dmahil::report {
namespace {

constexpr size_t kDetailWidth = 70;
constexpr size_t kTextWidth = 100;  // explanations are wrapped to this many columns
constexpr size_t kMaxSegments = 8;
constexpr size_t kMaxMapPages = 16;

std::string_view VerdictLabel(v1::Verdict verdict) {
  switch (EffectiveVerdict(verdict)) {
    case v1::VERDICT_PASS:
      return "PASS";
    case v1::VERDICT_FAIL:
      return "FAIL";
    case v1::VERDICT_NOT_APPLICABLE:
      return "n/a";
    default:
      return "ERROR";
  }
}

// What a diagnosis usually means, for a Xen or kernel developer.
std::string_view Meaning(v1::Diagnosis diagnosis) {
  switch (diagnosis) {
    case v1::DIAGNOSIS_STALE_LINE:
      return "lines held an older generation of the data: cache maintenance is missing "
             "(no clean before the device read, or no invalidate before the CPU read)";
    case v1::DIAGNOSIS_WRONG_BUS_ADDRESS:
      return "the device was given the wrong bus address (dma-ranges offset not applied, "
             "or a foreign page's pfn used instead of its bus frame)";
    case v1::DIAGNOSIS_STRAY_DMA:
      return "data landed outside the buffer, in a guard or canary: address truncation "
             "or a missed bounce";
    case v1::DIAGNOSIS_NEVER_LANDED:
      return "the device's data never reached the buffer (zero, unknown data or bus error): "
             "e.g. a bounce not copied back, or a grant missing from the IOMMU";
    case v1::DIAGNOSIS_TORN_LINE:
      return "lines are part new, part old: maintenance covered the wrong length or offset "
             "(e.g. 4 KiB grants inside a 64 KiB Linux page)";
    case v1::DIAGNOSIS_MISSING_MAINTENANCE:
      return "the kernel issued no clean (before the device read) or no invalidate (before "
             "the CPU read) for a page of a non-coherent mapping: stale data on silicon, "
             "caught here from the recorded GNTTABOP_cache_flush / arch_sync_dma_* calls";
    case v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE:
      return "the kernel cleaned or invalidated, but another address than the page's bus "
             "frame (e.g. dom0's pfn instead of the mfn): the real lines stay stale";
    default:
      return "";
  }
}

// `text` on one line, cut at a word boundary near `width` characters with "...".
std::string OneLine(std::string text, size_t width) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  if (text.size() <= width) return text;
  size_t cut = text.rfind(' ', width - 3);
  if (cut == std::string::npos || cut < width / 2) cut = width - 3;
  while (cut > 0 && (text[cut - 1] == ' ' || text[cut - 1] == ',' || text[cut - 1] == ';')) --cut;
  return text.substr(0, cut) + "...";
}

// `text` wrapped at word boundaries to `width` columns, every line starting with `indent`.
std::string Wrap(std::string_view text, std::string_view indent, size_t width) {
  std::string out, line(indent);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(pos, end - pos);
    if (line.size() > indent.size() && line.size() + 1 + word.size() > width) {
      out += line + '\n';
      line = std::string(indent);
    }
    if (line.size() > indent.size()) line += ' ';
    line += word;
    pos = end + 1;
  }
  if (line.size() > indent.size()) out += line + '\n';
  return out;
}

// "all 4 segments at the expected bus address (4 foreign, 1 bounced)".
std::string SegmentsOk(const v1::FixtureResult& r) {
  size_t foreign = 0, bounced = 0;
  for (const auto& s : r.segments()) {
    foreign += s.foreign() ? 1 : 0;
    bounced += s.bounced() ? 1 : 0;
  }
  return fmt::format("all {} segments at the expected bus address ({} foreign, {} bounced)",
                     r.segments_size(), foreign, bounced);
}

std::string DetailCell(const v1::FixtureResult& r) {
  if (!r.detail().empty()) return OneLine(r.detail(), kDetailWidth);
  if (EffectiveVerdict(r.verdict()) == v1::VERDICT_PASS)
    return fmt::format("{} lines checked", r.lines_checked());
  return "";
}

std::string Table(const std::vector<v1::FixtureResult>& results) {
  size_t board_w = 5, fixture_w = 7, diag_w = 9;  // header widths
  for (const auto& r : results) {
    board_w = std::max(board_w, r.board().size());
    fixture_w = std::max(fixture_w, r.fixture().size());
    diag_w = std::max(diag_w, DiagnosisName(r.diagnosis()).size());
  }
  const auto row = [&](std::string_view board, std::string_view fixture, std::string_view verdict,
                       std::string_view diagnosis, std::string_view detail) {
    std::string line = fmt::format("{:<{}}  {:<{}}  {:<7}  {:<{}}  {}", board, board_w, fixture,
                                   fixture_w, verdict, diagnosis, diag_w, detail);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    return line + '\n';
  };
  std::string out = row("BOARD", "FIXTURE", "VERDICT", "DIAGNOSIS", "DETAIL");
  for (const auto& r : results) {
    const bool diagnosed = r.diagnosis() != v1::DIAGNOSIS_NONE;
    out += row(r.board(), r.fixture(), VerdictLabel(r.verdict()),
               diagnosed ? DiagnosisName(r.diagnosis()) : "-", DetailCell(r));
  }
  return out;
}

// The explanation of one failing or erroring result.
std::string Explain(const v1::FixtureResult& r) {
  const bool fail = EffectiveVerdict(r.verdict()) == v1::VERDICT_FAIL;
  std::string out = fmt::format("  {} {}", r.fixture(), VerdictLabel(r.verdict()));
  if (!fail) {
    out += r.verdict() == v1::VERDICT_ERROR ? " (the fixture could not run)\n"
                                            : " (no verdict was recorded)\n";
    if (!r.detail().empty()) out += Wrap(r.detail(), "    ", kTextWidth);
    return out;
  }
  out += fmt::format(": {}", DiagnosisName(r.diagnosis()));
  if (r.diagnosis() == v1::DIAGNOSIS_WRONG_BUS_ADDRESS ||
      r.diagnosis() == v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE)
    out += fmt::format(", displacement {}", SignedHex(r.displacement()));
  out += '\n';
  out += Wrap(Meaning(r.diagnosis()), "    ", kTextWidth);
  if (!r.detail().empty()) out += Wrap(fmt::format("detail: {}", r.detail()), "    ", kTextWidth);
  out += fmt::format("    {} of {} lines wrong over {} iteration(s)", r.mismatching_lines(),
                     r.lines_checked(), r.iterations());
  if (r.failed_iteration() > 0) out += fmt::format(", first in iteration {}", r.failed_iteration());
  out += '\n';
  const bool any_wrong = std::any_of(r.segments().begin(), r.segments().end(), SegmentWrong);
  if (any_wrong)
    out += "    segments:\n" + RenderSegmentTable(r, kMaxSegments, "      ");
  else if (!r.segments().empty())
    out += fmt::format("    {}\n", SegmentsOk(r));
  if (const std::string map = RenderLineMap(r, kMaxMapPages, "      "); !map.empty())
    out += fmt::format("    line map ({}):\n{}", LineMapLegend(), map);
  return out;
}

}  // namespace

std::string RenderSummary(const std::vector<v1::FixtureResult>& results, const RunInfo& run) {
  size_t passed = 0, failed = 0, errors = 0;
  std::vector<const v1::FixtureResult*> not_applicable;
  std::vector<std::string> boards;  // with a failure or error, in order of first appearance
  for (const auto& r : results) {
    switch (EffectiveVerdict(r.verdict())) {
      case v1::VERDICT_PASS:
        ++passed;
        continue;
      case v1::VERDICT_NOT_APPLICABLE:
        not_applicable.push_back(&r);
        continue;
      case v1::VERDICT_FAIL:
        ++failed;
        break;
      default:
        ++errors;
        break;
    }
    if (std::find(boards.begin(), boards.end(), r.board()) == boards.end())
      boards.push_back(r.board());
  }

  std::string out = fmt::format("dmahil run: farm {}, seed {}\n\n",
                                run.farm.empty() ? "(unnamed)" : run.farm, run.seed);
  // What real boards booted (run.segments: farms with qemu-xen or hardware boards); a
  // virtual board's software is its board name's faults, and results.json has it too.
  if (run.segments && !run.software.empty()) {
    out += "Software (kernel; hypervisor):\n";
    for (const BoardSoftware& sw : run.software)
      out += Wrap(fmt::format("{}: {}; {}", sw.board, sw.kernel.empty() ? "unknown" : sw.kernel,
                              sw.hypervisor.empty() ? "unknown" : sw.hypervisor),
                  "  ", kTextWidth);
    out += '\n';
  }
  out += Table(results);
  out += fmt::format("\n{} passed, {} failed, {} errors{}\n", passed, failed, errors,
                     not_applicable.empty() ? "" : fmt::format(", {} n/a", not_applicable.size()));
  if (!not_applicable.empty()) {
    out += "\nnot applicable (the fixture cannot run on the board; not a pass, not a failure):\n";
    for (const v1::FixtureResult* r : not_applicable)
      out += Wrap(fmt::format("{} / {}: n/a: {}", r->board(), r->fixture(), r->detail()), "  ",
                  kTextWidth);
  }
  for (const auto& board : boards) {
    out += fmt::format("\n{}:\n", board);
    bool first = true;
    for (const auto& r : results) {
      const v1::Verdict v = EffectiveVerdict(r.verdict());
      if (r.board() != board || v == v1::VERDICT_PASS || v == v1::VERDICT_NOT_APPLICABLE) continue;
      if (!first) out += '\n';
      out += Explain(r);
      first = false;
    }
  }
  if (run.segments) {
    out += "\nPages as mapped (dom0 pfn, bus frame, the bus address the device used):\n";
    for (const auto& r : results) {
      if (r.segments().empty()) continue;
      out += fmt::format("  {} / {}:\n", r.board(), r.fixture());
      out += RenderSegmentTable(r, kMaxSegments, "    ");
    }
  }
  if (failed + errors > 0)
    out += fmt::format("\nReproduce with the same seed: --seed {}\n", run.seed);
  return out;
}

}  // namespace dmahil::report
