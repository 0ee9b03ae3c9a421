#include "controller/report/junit.h"

#include <map>
#include <sstream>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "controller/report/names.h"
#include "controller/report/picture.h"
#include "controller/report/write_file.h"

namespace dmahil::report {
namespace {

struct Counts {
  size_t tests = 0;
  size_t failures = 0;
  size_t errors = 0;
  size_t skipped = 0;  // VERDICT_NOT_APPLICABLE

  void Add(v1::Verdict verdict) {
    ++tests;
    if (EffectiveVerdict(verdict) == v1::VERDICT_FAIL) ++failures;
    if (EffectiveVerdict(verdict) == v1::VERDICT_ERROR) ++errors;
    if (EffectiveVerdict(verdict) == v1::VERDICT_NOT_APPLICABLE) ++skipped;
  }
};

void SetCounts(pugi::xml_node node, const Counts& c) {
  node.append_attribute("tests") = static_cast<unsigned long long>(c.tests);
  node.append_attribute("failures") = static_cast<unsigned long long>(c.failures);
  node.append_attribute("errors") = static_cast<unsigned long long>(c.errors);
  node.append_attribute("skipped") = static_cast<unsigned long long>(c.skipped);
}

// XML 1.0 cannot carry most control characters, even escaped: replace them.
std::string XmlSafe(std::string text) {
  for (char& c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\n' && c != '\r') c = '?';
  }
  return text;
}

// The text of a <failure>: what a CI reader needs without opening results.json.
std::string FailureText(const v1::FixtureResult& r) {
  std::string out = fmt::format("{} of {} lines wrong over {} iteration(s)", r.mismatching_lines(),
                                r.lines_checked(), r.iterations());
  if (r.failed_iteration() > 0)
    out += fmt::format("; first failing iteration {}", r.failed_iteration());
  out += '\n';
  if (r.diagnosis() == v1::DIAGNOSIS_WRONG_BUS_ADDRESS)
    out += fmt::format("displacement {} (dma_addr - expected)\n", SignedHex(r.displacement()));
  if (const std::string seg = RenderSegmentTable(r, 64, "  "); !seg.empty())
    out += "segments:\n" + seg;
  if (const std::string map = RenderLineMap(r, 1024, "  "); !map.empty())
    out += fmt::format("line map ({}):\n{}", LineMapLegend(), map);
  return out;
}

}  // namespace

std::string RenderJunit(const std::vector<v1::FixtureResult>& results, const RunInfo& run) {
  // Boards in order of first appearance, each with its results in input order.
  std::vector<std::string> boards;
  std::map<std::string, std::vector<const v1::FixtureResult*>> by_board;
  Counts total;
  for (const auto& r : results) {
    auto [it, fresh] = by_board.try_emplace(r.board());
    if (fresh) boards.push_back(r.board());
    it->second.push_back(&r);
    total.Add(r.verdict());
  }

  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto suites = doc.append_child("testsuites");
  suites.append_attribute("name") = XmlSafe(run.farm).c_str();
  SetCounts(suites, total);

  for (const auto& board : boards) {
    Counts counts;
    for (const auto* r : by_board[board]) counts.Add(r->verdict());
    auto suite = suites.append_child("testsuite");
    suite.append_attribute("name") = XmlSafe(board).c_str();
    SetCounts(suite, counts);
    auto props = suite.append_child("properties");
    auto seed = props.append_child("property");
    seed.append_attribute("name") = "seed";
    seed.append_attribute("value") = static_cast<unsigned long long>(run.seed);
    auto farm = props.append_child("property");
    farm.append_attribute("name") = "farm";
    farm.append_attribute("value") = XmlSafe(run.farm).c_str();
    for (const BoardSoftware& sw : run.software) {
      if (sw.board != board) continue;
      for (const auto& [name, value] :
           {std::pair{"kernel", &sw.kernel}, std::pair{"hypervisor", &sw.hypervisor}}) {
        if (value->empty()) continue;
        auto p = props.append_child("property");
        p.append_attribute("name") = name;
        p.append_attribute("value") = XmlSafe(*value).c_str();
      }
    }

    for (const auto* r : by_board[board]) {
      auto test = suite.append_child("testcase");
      test.append_attribute("classname") = XmlSafe(r->board()).c_str();
      test.append_attribute("name") = XmlSafe(r->fixture()).c_str();
      const v1::Verdict verdict = EffectiveVerdict(r->verdict());
      if (verdict == v1::VERDICT_FAIL) {
        const std::string diagnosis(DiagnosisName(r->diagnosis()));
        auto failure = test.append_child("failure");
        failure.append_attribute("message") =
            XmlSafe(fmt::format("{}: {}", diagnosis, r->detail())).c_str();
        failure.append_attribute("type") = diagnosis.c_str();
        failure.append_child(pugi::node_pcdata).set_value(XmlSafe(FailureText(*r)).c_str());
      } else if (verdict == v1::VERDICT_NOT_APPLICABLE) {
        test.append_child("skipped").append_attribute("message") =
            XmlSafe(fmt::format("n/a: {}", r->detail())).c_str();
      } else if (verdict == v1::VERDICT_ERROR) {
        auto error = test.append_child("error");
        const std::string message = r->verdict() == v1::VERDICT_ERROR
                                        ? r->detail()
                                        : fmt::format("no verdict recorded: {}", r->detail());
        error.append_attribute("message") = XmlSafe(message).c_str();
      }
    }
  }
  std::ostringstream out;
  doc.save(out, "  ", pugi::format_default, pugi::encoding_utf8);
  return out.str();
}

void WriteJunit(const std::filesystem::path& path, const std::vector<v1::FixtureResult>& results,
                const RunInfo& run) {
  WriteFileAtomically(path, RenderJunit(results, run));
}

}  // namespace dmahil::report
