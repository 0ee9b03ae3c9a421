#include "controller/matrix/matrix_report.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "controller/report/write_file.h"

namespace dmahil::matrix {
namespace {

using Json = nlohmann::ordered_json;  // keys stay in the order written

constexpr uint64_t kLinesGoal =
    10'000'000;  // the oracle's false-positive goal: zero mismatches over >= 10^7 lines
constexpr size_t kSeedsListed = 8;       // seeds named per row in the footer
constexpr size_t kErrorKindsListed = 3;  // most frequent error details in the footer

std::string FixtureId(size_t x) { return fmt::format("F{}", x + 1); }

// 1234567 -> "1,234,567".
std::string Grouped(uint64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// A median of whole iterations is whole or ends in .5: "2" or "2.5".
std::string FormatMedian(double m) {
  return std::floor(m) == m ? fmt::format("{}", static_cast<uint64_t>(m))
                            : fmt::format("{:.1f}", m);
}

std::string CellText(const Cell& c) {
  if (c.runs > 0 && c.not_applicable == c.runs) return "n/a";
  std::string s = fmt::format("{}/{}", c.detected, c.runs - c.not_applicable);
  if (c.detected > 0) s += " " + FormatMedian(c.MedianIterations());
  if (c.wrong_diagnosis > 0) s += "!";
  if (c.errors > 0) s += "E";
  if (c.not_applicable > 0) s += "N";
  return s;
}

std::string FaultLabel(const Row& row) {
  return row.fault == kNoFault ? std::string(kNoFault) + " (clean)" : row.fault;
}

std::string VerdictText(const Row& row) {
  switch (row.status) {
    case RowStatus::kClean:
      return fmt::format("CLEAN {}/{}", row.detected_runs, row.runs);
    case RowStatus::kFalsePositive:
      return fmt::format("FALSE+ {}/{}", row.detected_runs, row.runs);
    case RowStatus::kDetected:
      return fmt::format("DETECTED {}/{}", row.caught_runs, row.runs);
    case RowStatus::kWrongDiagnosis:
      return fmt::format("WRONG-DIAG {}/{}", row.caught_runs, row.runs);
    case RowStatus::kWeak:
      return fmt::format("WEAK {}/{}", row.caught_runs, row.runs);
    case RowStatus::kMissed:
      return fmt::format("MISSED {}/{}", row.caught_runs, row.runs);
    case RowStatus::kNotApplicable:
      return "n/a";
  }
  return "?";
}

std::string SeedList(const std::vector<uint64_t>& seeds) {
  std::string s;
  for (size_t i = 0; i < seeds.size() && i < kSeedsListed; ++i)
    s += (i == 0 ? "" : " ") + std::to_string(seeds[i]);
  if (seeds.size() > kSeedsListed) s += fmt::format(" (+{} more)", seeds.size() - kSeedsListed);
  return s;
}

// `prefix` + `text` as lines of at most `width` columns, broken at spaces of `text` (runs
// of spaces inside it collapse to one); continuation lines are indented by `indent`
// spaces. A word longer than a line (a path) is never broken.
std::string Wrap(const std::string& text, size_t width, size_t indent,
                 const std::string& prefix = "") {
  const size_t lead = text.find_first_not_of(' ');
  if (lead == std::string::npos) return prefix + text + "\n";
  std::string out;
  std::string line = prefix + text.substr(0, lead);
  bool line_empty = true;  // no word on `line` yet
  std::istringstream words(text.substr(lead));
  std::string w;
  while (words >> w) {
    if (!line_empty && line.size() + 1 + w.size() > width) {
      out += line + "\n";
      line = std::string(indent, ' ');
      line_empty = true;
    }
    line += (line_empty ? "" : " ") + w;
    line_empty = false;
  }
  return out + line + "\n";
}

// The fixtures' legend, wrapped at `width`.
std::string Legend(const MatrixPlan& plan, size_t width) {
  std::string out;
  std::string line = "fixtures:";
  for (size_t x = 0; x < plan.fixtures.size(); ++x) {
    const std::string item = fmt::format(" {} {}", FixtureId(x), plan.fixtures[x].name);
    if (line.size() + item.size() > width && line.size() > 9) {
      out += line + "\n";
      line = "         ";
    }
    line += item;
  }
  return out + line + "\n";
}

// The most frequent ERROR details, most frequent first (ties: by detail), at most `limit`.
std::vector<std::pair<std::string, uint32_t>> ErrorKinds(const Matrix& m, size_t limit) {
  std::vector<std::pair<std::string, uint32_t>> kinds(m.error_details.begin(),
                                                      m.error_details.end());
  std::stable_sort(kinds.begin(), kinds.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (kinds.size() > limit) kinds.resize(limit);
  return kinds;
}

}  // namespace

std::string RenderMatrixTable(const MatrixPlan& plan, const Matrix& matrix,
                              const TableOptions& options) {
  const size_t nfix = plan.fixtures.size();
  std::string out;
  // One logical line, wrapped at the width; continuation lines indented by `indent`.
  const auto emit = [&](const std::string& text, size_t indent) {
    out += Wrap(text, options.width, indent);
  };
  emit(fmt::format("dmahil matrix: seed {} (run i uses seed {} + i), {} runs per cell, {} "
                   "boards x {} fixtures x (clean + {} faults)",
                   plan.seed, plan.seed, plan.seeds, plan.boards.size(), nfix, plan.faults.size()),
       2);
  out += Legend(plan, options.width);
  out += fmt::format(
      "cell: k/n runs in which the fixture failed (detected), median iteration of detection; "
      "! = some\n      detections gave another diagnosis than the fault's, E = errors,"
      "\n      n/a (N: in some runs) = the fixture cannot run on the board (reasons below). "
      "Clean rows count false positives.\nverdict: DETECTED = caught (a fixture failed with "
      "the right diagnosis) in >= {}% of runs;\n      WRONG-DIAG = detected that often but "
      "with other diagnoses; WEAK = sometimes; MISSED = never\n",
      kDetectedPercent);

  // Column widths.
  size_t fw = std::string_view("FAULT").size();
  size_t vw = std::string_view("VERDICT").size();
  std::vector<size_t> cw(nfix);
  for (size_t x = 0; x < nfix; ++x) cw[x] = FixtureId(x).size();
  for (const Row& row : matrix.rows) {
    fw = std::max(fw, FaultLabel(row).size());
    if (row.status == RowStatus::kNotApplicable) continue;
    vw = std::max(vw, VerdictText(row).size());
    for (size_t x = 0; x < nfix && x < row.cells.size(); ++x)
      cw[x] = std::max(cw[x], CellText(row.cells[x]).size());
  }
  // Panels: consecutive fixture columns that fit in the width with FAULT and VERDICT.
  // Greedy first; then, with as many panels, as even a split as fits.
  const size_t fixed = 2 + fw + 2 + vw;
  const auto fits = [&](size_t begin, size_t end) {
    size_t used = fixed;
    for (size_t x = begin; x < end; ++x) used += 2 + cw[x];
    return used <= options.width || end - begin <= 1;
  };
  std::vector<std::pair<size_t, size_t>> panels;  // [begin, end) fixture indices
  for (size_t x = 0; x < nfix;) {
    size_t end = x + 1;
    while (end < nfix && fits(x, end + 1)) ++end;
    panels.emplace_back(x, end);
    x = end;
  }
  if (panels.size() > 1) {
    const size_t per = (nfix + panels.size() - 1) / panels.size();
    std::vector<std::pair<size_t, size_t>> even;
    for (size_t x = 0; x < nfix; x += per) even.emplace_back(x, std::min(nfix, x + per));
    if (even.size() == panels.size() && std::all_of(even.begin(), even.end(), [&](const auto& p) {
          return fits(p.first, p.second);
        }))
      panels = even;
  }
  if (panels.empty()) panels.emplace_back(0, 0);

  for (size_t b = 0; b < plan.boards.size(); ++b) {
    out += fmt::format("\n{} ({})\n", plan.boards[b].name, plan.boards[b].file.string());
    for (const auto& [begin, end] : panels) {
      if (panels.size() > 1)
        out += end - begin == 1
                   ? fmt::format("  fixture {}\n", FixtureId(begin))
                   : fmt::format("  fixtures {}-{}\n", FixtureId(begin), FixtureId(end - 1));
      std::string header = fmt::format("  {:<{}}", "FAULT", fw);
      for (size_t x = begin; x < end; ++x) header += fmt::format("  {:<{}}", FixtureId(x), cw[x]);
      header += fmt::format("  {}", "VERDICT");
      out += header + "\n";
      for (const Row& row : matrix.rows) {
        if (row.board != b) continue;
        std::string line = fmt::format("  {:<{}}", FaultLabel(row), fw);
        if (row.status == RowStatus::kNotApplicable) {
          // The whole reason, wrapped under itself: it is what the reader needs here.
          out +=
              Wrap("n/a: " + row.cannot_manifest, options.width, line.size() + 2 + 5, line + "  ");
          continue;
        }
        for (size_t x = begin; x < end; ++x)
          line += fmt::format("  {:<{}}", CellText(row.cells[x]), cw[x]);
        out += line + "  " + VerdictText(row) + "\n";
      }
    }
  }

  // Footer.
  const CleanTotals& c = matrix.clean;
  out += "\n";
  emit(fmt::format("clean boards: {} runs, {} with false positives ({} failing results), {} "
                   "mismatching lines in {} verified lines",
                   c.runs, c.false_positive_runs, c.false_positive_results,
                   Grouped(c.mismatching_lines), Grouped(c.lines_checked)),
       2);
  emit(fmt::format("  the false-positive goal is zero mismatches over >= {} verified lines: {}",
                   Grouped(kLinesGoal),
                   c.mismatching_lines > 0 ? "NOT MET (mismatches)"
                   : c.lines_checked >= kLinesGoal
                       ? "met"
                       : fmt::format("not shown by this matrix ({:.1f}% of the lines; "
                                     "more seeds or boards add lines)",
                                     100.0 * static_cast<double>(c.lines_checked) /
                                         static_cast<double>(kLinesGoal))),
       4);

  std::vector<std::string> wrong;
  for (const Row& row : matrix.rows)
    for (size_t x = 0; x < row.cells.size(); ++x) {
      const Cell& cell = row.cells[x];
      if (cell.wrong_diagnosis == 0) continue;
      std::string said;
      for (const auto& [name, n] : cell.diagnoses)
        if (name != row.expected)
          said += fmt::format("{}{} x{}", said.empty() ? "" : ", ", name, n);
      wrong.push_back(fmt::format("  {} {} / {} {}: {} of {} detections said {} (expected {})",
                                  plan.boards[row.board].name, row.fault, FixtureId(x),
                                  plan.fixtures[x].name, cell.wrong_diagnosis, cell.detected, said,
                                  row.expected));
    }
  if (!wrong.empty()) {
    out += "wrong diagnoses (!):\n";
    for (const std::string& w : wrong) emit(w, 4);
  }

  std::vector<std::string> missed;
  for (const Row& row : matrix.rows) {
    if (row.status == RowStatus::kNotApplicable || row.status == RowStatus::kClean ||
        row.status == RowStatus::kDetected)
      continue;
    missed.push_back(fmt::format(
        "  {} {}: {}; {} at seeds {}", plan.boards[row.board].name, row.fault, VerdictText(row),
        row.fault == kNoFault ? "false positives" : "not caught", SeedList(row.missed_seeds)));
  }
  if (!missed.empty()) {
    out += "needs a look:\n";
    for (const std::string& m : missed) emit(m, 4);
    if (!options.farm_file.empty())
      emit(fmt::format("  reproduce seed S: dmahil run --farm {} --seed S (board "
                       "\"<board>+<fault>\"; its results.json and console are kept in "
                       "runs/seed-S/)",
                       options.farm_file),
           4);
  }

  if (matrix.error_results > 0) {
    std::vector<uint64_t> seeds;
    for (const Row& row : matrix.rows)
      seeds.insert(seeds.end(), row.error_seeds.begin(), row.error_seeds.end());
    std::sort(seeds.begin(), seeds.end());
    seeds.erase(std::unique(seeds.begin(), seeds.end()), seeds.end());
    emit(fmt::format("errors: {} results at seeds {}; first: {}", matrix.error_results,
                     SeedList(seeds), matrix.first_error),
         2);
    for (const auto& [detail, n] : ErrorKinds(matrix, kErrorKindsListed))
      emit(fmt::format("    {} x {}", n, detail), 6);
  }
  // Fixtures that cannot run on a board: per board and fixture, once (the reason does not
  // depend on the fault or the seed).
  std::vector<std::string> na;
  for (size_t b = 0; b < plan.boards.size(); ++b)
    for (size_t x = 0; x < plan.fixtures.size(); ++x)
      for (const Row& row : matrix.rows) {
        if (row.board != b || x >= row.cells.size() || row.cells[x].not_applicable == 0) continue;
        na.push_back(fmt::format("  {} / {} {}: {}", plan.boards[b].name, FixtureId(x),
                                 plan.fixtures[x].name, row.cells[x].not_applicable_reason));
        break;
      }
  if (!na.empty()) {
    out += "not applicable (counted apart: not a detection, not a miss):\n";
    for (const std::string& n : na) emit(n, 4);
  }
  if (!plan.not_modelled.empty()) {
    std::string ids;
    for (const std::string& id : plan.not_modelled) ids += (ids.empty() ? "" : ", ") + id;
    emit(fmt::format("not modelled yet (not run): {}", ids), 2);
  }

  size_t pairs = 0;
  size_t detected = 0;
  for (const Row& row : matrix.rows) {
    if (row.fault == kNoFault || row.status == RowStatus::kNotApplicable) continue;
    ++pairs;
    detected += row.status == RowStatus::kDetected ? 1 : 0;
  }
  const int code = ExitCode(matrix);
  const std::string counts = fmt::format(
      "{} of {} fault/board pairs that can manifest DETECTED (>= {}% of runs, right "
      "diagnosis); {} false-positive clean runs",
      detected, pairs, kDetectedPercent, c.false_positive_runs);
  if (code == 2)
    emit(fmt::format("matrix: ERROR: {} results were infrastructure errors, so the matrix is "
                     "incomplete; {}",
                     matrix.error_results, counts),
         2);
  else
    emit(fmt::format("matrix: {}: {}", code == 0 ? "PASS" : "FAIL", counts), 2);
  return out;
}

std::string RenderMatrixJson(const MatrixPlan& plan, const Matrix& matrix) {
  Json doc;
  doc["seed"] = plan.seed;
  doc["seeds"] = plan.seeds;
  doc["run_seeds"] = "seed + i, i in [0, seeds)";
  doc["detected_percent"] = kDetectedPercent;
  doc["boards"] = Json::array();
  for (const PlanBoard& b : plan.boards)
    doc["boards"].push_back(Json{{"name", b.name}, {"file", b.file.string()}});
  doc["fixtures"] = Json::array();
  for (size_t x = 0; x < plan.fixtures.size(); ++x)
    doc["fixtures"].push_back(Json{{"id", FixtureId(x)},
                                   {"name", plan.fixtures[x].name},
                                   {"file", plan.fixtures[x].file.string()}});
  doc["faults"] = Json::array();
  for (const PlanFault& f : plan.faults)
    doc["faults"].push_back(Json{{"id", f.id}, {"diagnosis", f.diagnosis}});
  doc["not_modelled"] = plan.not_modelled;

  doc["rows"] = Json::array();
  for (const Row& row : matrix.rows) {
    Json r;
    r["board"] = plan.boards[row.board].name;
    r["fault"] = row.fault;
    if (row.expected.empty())
      r["expected_diagnosis"] = nullptr;
    else
      r["expected_diagnosis"] = row.expected;
    r["status"] = std::string(RowStatusName(row.status));
    if (row.status == RowStatus::kNotApplicable) {
      r["cannot_manifest"] = row.cannot_manifest;
      doc["rows"].push_back(std::move(r));
      continue;
    }
    r["runs"] = row.runs;
    r["detected_runs"] = row.detected_runs;
    r["caught_runs"] = row.caught_runs;
    r["error_runs"] = row.error_runs;
    r["missed_seeds"] = row.missed_seeds;
    r["error_seeds"] = row.error_seeds;
    r["cells"] = Json::array();
    for (size_t x = 0; x < row.cells.size(); ++x) {
      const Cell& c = row.cells[x];
      Json j;
      j["fixture"] = plan.fixtures[x].name;
      j["runs"] = c.runs;
      j["detected"] = c.detected;
      j["right_diagnosis"] = c.right_diagnosis;
      j["wrong_diagnosis"] = c.wrong_diagnosis;
      j["errors"] = c.errors;
      if (c.errors > 0) j["first_error"] = c.first_error;
      j["not_applicable"] = c.not_applicable;
      if (c.not_applicable > 0) j["not_applicable_reason"] = c.not_applicable_reason;
      if (c.failed_iterations.empty())
        j["median_iterations"] = nullptr;
      else
        j["median_iterations"] = c.MedianIterations();
      std::map<uint32_t, uint32_t> hist;
      for (uint32_t it : c.failed_iterations) ++hist[it];
      j["iterations"] = Json::object();
      for (const auto& [it, n] : hist) j["iterations"][std::to_string(it)] = n;
      j["diagnoses"] = Json::object();
      for (const auto& [name, n] : c.diagnoses) j["diagnoses"][name] = n;
      j["mismatching_lines"] = c.mismatching_lines;
      j["lines_checked"] = c.lines_checked;
      r["cells"].push_back(std::move(j));
    }
    doc["rows"].push_back(std::move(r));
  }
  const CleanTotals& c = matrix.clean;
  doc["clean"] = Json{{"runs", c.runs},
                      {"false_positive_runs", c.false_positive_runs},
                      {"false_positive_results", c.false_positive_results},
                      {"mismatching_lines", c.mismatching_lines},
                      {"lines_checked", c.lines_checked}};
  doc["errors"] = Json{{"results", matrix.error_results}, {"first", matrix.first_error}};
  doc["errors"]["kinds"] = Json::array();
  for (const auto& [detail, n] : ErrorKinds(matrix, matrix.error_details.size()))
    doc["errors"]["kinds"].push_back(Json{{"count", n}, {"detail", detail}});
  doc["exit_code"] = ExitCode(matrix);
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

void WriteMatrixJson(const std::filesystem::path& path, const MatrixPlan& plan,
                     const Matrix& matrix) {
  report::WriteFileAtomically(path, RenderMatrixJson(plan, matrix));
}

}  // namespace dmahil::matrix
