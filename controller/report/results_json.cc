#include "controller/report/results_json.h"

#include <nlohmann/json.hpp>

#include "common/fault_catalogue.h"
#include "controller/report/names.h"
#include "controller/report/write_file.h"

namespace dmahil::report {
namespace {

using Json = nlohmann::ordered_json;  // keys stay in the order written

Json SegmentJson(const v1::SegmentReport& s) {
  Json j;
  j["page"] = s.page();
  j["pfn"] = Hex(s.pfn());
  j["bfn"] = Hex(s.bfn());
  j["dma_addr"] = Hex(s.dma_addr());
  j["expected_dma_addr"] = Hex(s.expected_dma_addr());
  j["foreign"] = s.foreign();
  j["bounced"] = s.bounced();
  j["unreachable"] = s.unreachable();
  j["write_refused"] = s.write_refused();
  j["bfn_pfn_valid"] = s.bfn_pfn_valid();
  return j;
}

Json ResultJson(const v1::FixtureResult& r) {
  Json j;
  j["board"] = r.board();
  j["fixture"] = r.fixture();
  j["verdict"] = std::string(VerdictName(r.verdict()));
  if (r.diagnosis() == v1::DIAGNOSIS_NONE)
    j["diagnosis"] = nullptr;
  else
    j["diagnosis"] = std::string(DiagnosisName(r.diagnosis()));
  j["detail"] = r.detail();
  if (r.verdict() == v1::VERDICT_NOT_APPLICABLE) j["reason"] = r.detail();
  j["mismatching_lines"] = r.mismatching_lines();
  j["lines_checked"] = r.lines_checked();
  if (r.diagnosis() == v1::DIAGNOSIS_WRONG_BUS_ADDRESS) {
    j["displacement"] = r.displacement();
    j["displacement_hex"] = SignedHex(r.displacement());
  }
  j["iterations"] = r.iterations();
  j["failed_iteration"] = r.failed_iteration();
  if (r.io_path() != v1::IO_PATH_UNSPECIFIED) j["io_path"] = std::string(IoPathName(r.io_path()));
  j["segments"] = Json::array();
  for (const auto& s : r.segments()) j["segments"].push_back(SegmentJson(s));
  j["line_map"] = Json::array();
  for (const auto& row : r.line_map()) j["line_map"].push_back(row);
  return j;
}

}  // namespace

std::string RenderResultsJson(const std::vector<v1::FixtureResult>& results, const RunInfo& run) {
  Json doc;
  doc["seed"] = run.seed;
  doc["farm"] = run.farm;
  doc["boards"] = Json::array();
  for (const BoardSoftware& sw : run.software)
    doc["boards"].push_back(
        {{"name", sw.board}, {"kernel", sw.kernel}, {"hypervisor", sw.hypervisor}});
  doc["results"] = Json::array();
  for (const auto& r : results) doc["results"].push_back(ResultJson(r));
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

void WriteResultsJson(const std::filesystem::path& path,
                      const std::vector<v1::FixtureResult>& results, const RunInfo& run) {
  WriteFileAtomically(path, RenderResultsJson(results, run));
}

}  // namespace dmahil::report
