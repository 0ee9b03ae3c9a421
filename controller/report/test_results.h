// Sample results for the report tests: a pass, two wrong-bus-address failures (negative and
// positive displacement), a stale-line failure and an infrastructure error.
#pragma once

#include <string>
#include <vector>

#include "controller/report/run_info.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::report::testing {

inline RunInfo SampleRun() { return {.seed = 0xdeadbeefcafe, .farm = "nightly"}; }

inline v1::FixtureResult Result(const std::string& board, const std::string& fixture,
                                v1::Verdict verdict) {
  v1::FixtureResult r;
  r.set_board(board);
  r.set_fixture(fixture);
  r.set_verdict(verdict);
  r.set_iterations(4);
  r.set_lines_checked(4 * 4 * 64);
  return r;
}

inline std::vector<v1::FixtureResult> SampleResults() {
  std::vector<v1::FixtureResult> out;
  out.push_back(Result("rpi4-clean", "grant-from-device", v1::VERDICT_PASS));

  auto wba = Result("rpi4-no-offset", "grant-from-device", v1::VERDICT_FAIL);
  wba.set_diagnosis(v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  wba.set_detail(
      "device DMA'd to the CPU physical address: dma-ranges offset <0xc0000000> "
      "missing on all 4 pages, every line of the buffer came from elsewhere");
  wba.set_mismatching_lines(1024);
  wba.set_displacement(-0xc0000000LL);
  wba.set_failed_iteration(1);
  for (uint32_t p = 0; p < 4; ++p) {
    auto* s = wba.add_segments();
    s->set_page(p);
    s->set_pfn(0x80000 + p);
    s->set_bfn(0x120000 + p);
    s->set_dma_addr(0x120000000ULL + 0x1000ULL * p);
    s->set_expected_dma_addr(0x1e0000000ULL + 0x1000ULL * p);
    s->set_foreign(true);
    wba.add_line_map(std::string(64, 'M'));
  }
  out.push_back(wba);

  auto stale = Result("rpi4-no-offset", "local-to-device", v1::VERDICT_FAIL);
  stale.set_diagnosis(v1::DIAGNOSIS_STALE_LINE);
  stale.set_detail("3 lines stale after dma_map_page(DMA_TO_DEVICE)");
  stale.set_mismatching_lines(3);
  stale.set_failed_iteration(2);
  for (uint32_t p = 0; p < 4; ++p) {
    auto* s = stale.add_segments();
    s->set_page(p);
    s->set_pfn(0x40000 + p);
    s->set_bfn(0x40000 + p);
    s->set_dma_addr(0x40000000ULL + 0x1000ULL * p);
    s->set_expected_dma_addr(0x40000000ULL + 0x1000ULL * p);
    std::string row(64, '.');
    if (p == 2) row[5] = row[6] = row[40] = 'S';
    stale.add_line_map(row);
  }
  out.push_back(stale);

  auto dbl = Result("zcu102", "grant-double-map", v1::VERDICT_FAIL);
  dbl.set_diagnosis(v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  dbl.set_detail("second mapping of the same gref resolved to the next frame");
  dbl.set_mismatching_lines(64);
  dbl.set_displacement(0x1000);
  dbl.set_failed_iteration(1);
  auto* s = dbl.add_segments();
  s->set_page(0);
  s->set_pfn(0x8f000);
  s->set_bfn(0x880001);
  s->set_dma_addr(0x880001000ULL);
  s->set_expected_dma_addr(0x880000000ULL);
  s->set_foreign(true);
  s->set_bounced(true);
  dbl.add_line_map(std::string(64, 'M'));
  out.push_back(dbl);

  auto err = Result("qemu-xen", "grant-from-device", v1::VERDICT_ERROR);
  err.set_detail("agent did not answer within 120 s after power-on; board power-cycled twice");
  err.set_lines_checked(0);
  out.push_back(err);
  return out;
}

}  // namespace dmahil::report::testing
