#include "controller/report/summary.h"

#include <string>

#include <gtest/gtest.h>

#include "controller/report/test_results.h"

namespace dmahil::report {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ReportSummary, TotalsLine) {
  const std::string s = RenderSummary(testing::SampleResults(), testing::SampleRun());
  EXPECT_TRUE(Has(s, "\n1 passed, 3 failed, 1 errors\n")) << s;
  EXPECT_TRUE(Has(RenderSummary({}, testing::SampleRun()), "\n0 passed, 0 failed, 0 errors\n"));
}

TEST(ReportSummary, TableAndExplanations) {
  const std::string s = RenderSummary(testing::SampleResults(), testing::SampleRun());
  EXPECT_TRUE(Has(s, "farm nightly, seed 244837814094590")) << s;
  EXPECT_TRUE(Has(s, "BOARD           FIXTURE            VERDICT  DIAGNOSIS          DETAIL\n"))
      << s;
  EXPECT_TRUE(Has(s,
                  "rpi4-clean      grant-from-device  PASS     -                  1024 lines "
                  "checked\n"))
      << s;
  EXPECT_TRUE(Has(s, "qemu-xen        grant-from-device  ERROR    -                  agent did"))
      << s;
  // The long detail is cut in the table and given in full in the explanation.
  EXPECT_TRUE(Has(s, "CPU physical address: dma-ranges offset...\n")) << s;
  EXPECT_TRUE(Has(s,
                  "    detail: device DMA'd to the CPU physical address: dma-ranges offset "
                  "<0xc0000000> missing on all\n    4 pages, every line of the buffer came from "
                  "elsewhere\n"))
      << s;
  EXPECT_TRUE(Has(s, "0x120003000  0x1e0003000  foreign  -0xc0000000\n")) << s;
  EXPECT_TRUE(Has(s, "all 4 segments at the expected bus address (0 foreign, 0 bounced)")) << s;
  EXPECT_TRUE(Has(s, "grant-from-device FAIL: wrong-bus-address, displacement -0xc0000000\n")) << s;
  EXPECT_TRUE(Has(s, "grant-double-map FAIL: wrong-bus-address, displacement +0x1000\n")) << s;
  EXPECT_TRUE(Has(s, "local-to-device FAIL: stale-line\n")) << s;
  EXPECT_TRUE(Has(s, "page     2  .....SS.................................S")) << s;
  EXPECT_FALSE(Has(s, "\nrpi4-clean:\n")) << s;
  EXPECT_TRUE(Has(s, "--seed 244837814094590")) << s;
}

TEST(ReportSummary, IdenticalAcrossRenders) {
  EXPECT_EQ(RenderSummary(testing::SampleResults(), testing::SampleRun()),
            RenderSummary(testing::SampleResults(), testing::SampleRun()));
}

// The segment table flags what the kernel did with each page: refused writes and a foreign
// frame that pfn_valid() accepts in dom0 (swiotlb-xen then takes the local path).
TEST(ReportSummary, SegmentFlagsNameRefusedWritesAndPfnValidForeignFrames) {
  v1::FixtureResult r;
  r.set_board("qemu-xen-src");
  r.set_fixture("foreign-from-device");
  r.set_verdict(v1::VERDICT_PASS);
  v1::SegmentReport* s = r.add_segments();
  s->set_pfn(0x6b418);
  s->set_bfn(0x7f400);
  s->set_dma_addr(0x7f400000);
  s->set_expected_dma_addr(0x7f400000);
  s->set_foreign(true);
  s->set_bfn_pfn_valid(true);
  RunInfo run{7, "qemu-xen-source"};
  run.segments = true;
  std::string out = RenderSummary({r}, run);
  EXPECT_TRUE(Has(out, "foreign,bfn-pfn-valid")) << out;
  s->set_write_refused(true);
  out = RenderSummary({r}, run);
  EXPECT_TRUE(Has(out, "foreign,write-refused,bfn-pfn-valid")) << out;
}

// A farm of real boards names what each booted, before the verdicts.
TEST(ReportSummary, RealBoardsNameTheirKernelAndHypervisor) {
  RunInfo run{7, "qemu-xen-source"};
  run.software.push_back({"qemu-xen-src", "Linux debian/6.1.192-3 (tree /t, commit 0123456789ab)",
                          "Xen /x/xen-4.17-arm64 (sha256 0011223344556677)"});
  EXPECT_FALSE(Has(RenderSummary({}, run), "Software"));  // virtual farms: results.json only
  run.segments = true;
  const std::string out = RenderSummary({}, run);
  EXPECT_TRUE(Has(out, "Software (kernel; hypervisor):\n  qemu-xen-src: Linux debian/6.1.192-3"))
      << out;
  EXPECT_TRUE(Has(out, "Xen /x/xen-4.17-arm64 (sha256")) << out;
  EXPECT_TRUE(Has(out, "0011223344556677)")) << out;
}

}  // namespace
}  // namespace dmahil::report

namespace dmahil::report {
namespace {

TEST(ReportSummary, WithSegmentsEveryResultListsItsPagesPassingOnesToo) {
  v1::FixtureResult pass;
  pass.set_board("qemu-xen-arm64");
  pass.set_fixture("foreign-to-device");
  pass.set_verdict(v1::VERDICT_PASS);
  v1::SegmentReport* s = pass.add_segments();
  s->set_pfn(0x63ab5);
  s->set_bfn(0xbab25);
  s->set_dma_addr(0xbab25000);
  s->set_expected_dma_addr(0xbab25000);
  s->set_foreign(true);
  RunInfo run{7, "qemu-xen"};
  EXPECT_EQ(RenderSummary({pass}, run).find("0xbab25000"), std::string::npos);
  run.segments = true;
  const std::string out = RenderSummary({pass}, run);
  EXPECT_NE(out.find("qemu-xen-arm64 / foreign-to-device:"), std::string::npos) << out;
  EXPECT_NE(out.find("0x63ab5"), std::string::npos) << out;
  EXPECT_NE(out.find("0xbab25000"), std::string::npos) << out;
}

}  // namespace
}  // namespace dmahil::report
