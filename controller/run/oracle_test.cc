// The oracle's classification: each bug class of docs/architecture.md §6 from the evidence it
// leaves.
#include "controller/run/oracle.h"

#include <gtest/gtest.h>

namespace dmahil::controller {
namespace {

v1::Board Rpi4Like() {
  v1::Board b;
  b.mutable_dma()->set_mask_bits(32);
  auto* r = b.mutable_dma()->add_dma_ranges();
  r->set_bus_base(0xc0000000);
  r->set_cpu_base(0);
  r->set_size(0x40000000);
  return b;
}

v1::Board Flat64() {
  v1::Board b;
  b.mutable_dma()->set_mask_bits(64);
  return b;
}

v1::DmaSegment Seg(uint64_t offset, uint64_t pfn, uint64_t bfn, uint64_t dma,
                   bool bounced = false) {
  v1::DmaSegment s;
  s.set_offset(offset);
  s.set_length(4096);
  s.set_pfn(pfn);
  s.set_bfn(bfn);
  s.set_foreign(pfn != bfn);
  s.set_dma_addr(dma);
  s.set_bounced(bounced);
  return s;
}

v1::LineFinding Line(uint32_t line, v1::LineClass cls, uint32_t found_line = 0) {
  v1::LineFinding f;
  f.set_line(line);
  f.set_cls(cls);
  f.set_found_line(found_line);
  return f;
}

Evidence Ev(v1::DmaDirection dir, std::vector<v1::DmaSegment> segs, uint32_t mask_bits = 64) {
  Evidence e;
  e.direction = dir;
  e.line_size = 64;
  e.dma_mask_bits = mask_bits;
  e.buffer_offset = 0;
  e.buffer_bytes = segs.size() * 4096;
  e.lines_checked = segs.size() * 64;
  e.segments = std::move(segs);
  return e;
}

TEST(Oracle, CleanRunPasses) {
  v1::FixtureResult r;
  Diagnose(Rpi4Like(), Ev(v1::DMA_TO_DEVICE, {Seg(0, 0x2f000, 0x30000, 0xf0000000)}, 32), &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_PASS) << r.detail();
  EXPECT_EQ(r.segments(0).expected_dma_addr(), 0xf0000000u);
  EXPECT_EQ(r.line_map(0), std::string(64, '.'));
}

TEST(Oracle, ABounceFixtureWhosePagesWereNotBouncedIsNotApplicableNotAPass) {
  // 32-bit mask, a page the hypervisor placed within reach: mapped directly, data fine.
  Evidence ev =
      Ev(v1::DMA_TO_DEVICE,
         {Seg(0, 0x2f000, 0x30000, 0x30000000, true), Seg(4096, 0x2f001, 0x31000, 0x31000000)}, 32);
  ev.needs_bounce = true;
  v1::FixtureResult r;
  Diagnose(Flat64(), ev, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_NOT_APPLICABLE) << r.detail();
  EXPECT_NE(r.detail().find("pfn 0x2f001 (bfn 0x31000) was mapped directly within the 32-bit "
                            "mask"),
            std::string::npos)
      << r.detail();
  ev.segments[1].set_bounced(true);  // every page bounced: the fixture's case ran
  v1::FixtureResult all_bounced;
  Diagnose(Flat64(), ev, &all_bounced);
  EXPECT_EQ(all_bounced.verdict(), v1::VERDICT_PASS) << all_bounced.detail();
}

TEST(Oracle, MissingDmaOffsetIsAWrongBusAddressByTheOffset) {
  Evidence e = Ev(v1::DMA_TO_DEVICE, {Seg(0, 0x2f000, 0x30000, 0x30000000)}, 32);
  for (uint32_t l = 0; l < 64; ++l) e.findings.push_back(Line(l, v1::LINE_BUS_ERROR));
  v1::FixtureResult r;
  Diagnose(Rpi4Like(), e, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(r.displacement(), -0xc0000000LL);
  EXPECT_NE(r.detail().find("-0xc0000000"), std::string::npos) << r.detail();
  EXPECT_EQ(r.line_map(0), std::string(64, 'B'));
}

TEST(Oracle, PfnBasedAddressIsAWrongBusAddressByPfnMinusMfn) {
  Evidence e = Ev(v1::DMA_FROM_DEVICE, {Seg(0, 0x3f000, 0x800000, 0x3f000000)});
  e.findings.push_back(Line(3, v1::LINE_STALE));
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(r.displacement(), (0x3f000LL - 0x800000LL) * 4096);
}

TEST(Oracle, TheDeviceMayWriteOnlyARightReachableSegmentTheAgentDidNotRefuse) {
  // docs/architecture.md §12: the controller's side of the one write rule.
  EXPECT_TRUE(DeviceMayWrite(Flat64(), 64, Seg(0, 0x3f000, 0x800000, 0x800000000)));
  EXPECT_FALSE(DeviceMayWrite(Flat64(), 64, Seg(0, 0x3f000, 0x800000, 0x3f000000)))
      << "a foreign page's pfn address";
  EXPECT_FALSE(DeviceMayWrite(Rpi4Like(), 32, Seg(0, 0x2f000, 0x30000, 0x30000000)))
      << "the dma-ranges offset missing";
  EXPECT_FALSE(DeviceMayWrite(Flat64(), 32, Seg(0, 0x3f000, 0x800000, 0x800000000)))
      << "right, but beyond a 32-bit mask and not bounced";
  EXPECT_TRUE(DeviceMayWrite(Flat64(), 32, Seg(0, 0x3f000, 0x800000, 0x3e000000, true)))
      << "a reachable bounce slot";
  v1::DmaSegment refused = Seg(0, 0x3f000, 0x800000, 0x800000000);
  refused.set_write_refused(true);
  EXPECT_FALSE(DeviceMayWrite(Flat64(), 64, refused)) << "the agent's own judgement wins";
}

/// DMA_FROM_DEVICE of foreign pfn 0x3f000 (bfn 0x800000) at bus `dma`, which the agent
/// refused to let the device write: every line still holds the old generation.
Evidence SkippedWrite(uint64_t dma) {
  v1::DmaSegment s = Seg(0, 0x3f000, 0x800000, dma);
  s.set_write_refused(true);
  Evidence e = Ev(v1::DMA_FROM_DEVICE, {s});
  for (uint32_t l = 0; l < 64; ++l) e.findings.push_back(Line(l, v1::LINE_STALE));
  return e;
}

TEST(Oracle, AWrongAddressWhoseWritesWereSkippedIsDiagnosedFromTheAudit) {
  // dma-ops-bypass-xen: the audit names the bug and its displacement, not the data.
  const Evidence e = SkippedWrite(0x3f000000);
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS) << r.detail();
  EXPECT_EQ(r.displacement(), (0x3f000LL - 0x800000LL) * 4096);
  EXPECT_TRUE(r.segments(0).write_refused());
}

TEST(Oracle, ASegmentTheAgentRefusedIsNeverAPassEvenWhenTheBoardFileAgrees) {
  // The agent's own computation (the real device's dma-ranges, the swiotlb pool) says the
  // address is wrong; the board file's says right: a wrong bus address, not a pass, and
  // not the stale lines the skipped write left behind.
  Evidence e = SkippedWrite(0x800000000);
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS) << r.detail();
  EXPECT_NE(r.detail().find("refused to let the device write"), std::string::npos) << r.detail();
  EXPECT_EQ(r.displacement(), 0);
  e.findings.clear();  // and with the data matching
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL) << r.detail();
}

TEST(Oracle, StaleLinesWithRightAddresses) {
  Evidence e = Ev(v1::DMA_FROM_DEVICE, {Seg(0, 0x3f000, 0x800000, 0x800000000)});
  e.findings.push_back(Line(5, v1::LINE_STALE));
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STALE_LINE);
  EXPECT_NE(r.detail().find("missing invalidate"), std::string::npos);
  EXPECT_EQ(r.line_map(0)[5], 'S');
  Evidence t = Ev(v1::DMA_TO_DEVICE, {Seg(0, 0x3f000, 0x800000, 0x800000000)});
  t.findings.push_back(Line(1, v1::LINE_STALE));
  t.device_read_findings = 1;
  Diagnose(Flat64(), t, &r);
  EXPECT_NE(r.detail().find("missing clean"), std::string::npos);
}

TEST(Oracle, StaleOnABouncedPageMeansTheBounceWasNotCopiedBack) {
  Evidence e = Ev(v1::DMA_FROM_DEVICE, {Seg(0, 0x3f000, 0x800000, 0x3e000000, true)}, 32);
  e.findings.push_back(Line(0, v1::LINE_STALE));
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_NEVER_LANDED);
  EXPECT_NE(r.detail().find("bounce"), std::string::npos);
}

TEST(Oracle, UnreachableAndNotBouncedIsStrayDma) {
  v1::FixtureResult r;
  Diagnose(Flat64(), Ev(v1::DMA_TO_DEVICE, {Seg(0, 0x3f000, 0x800000, 0x800000000)}, 32), &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STRAY_DMA);
}

TEST(Oracle, MisplacedLineGivesTheDisplacementFromItsHeader) {
  Evidence e = Ev(v1::DMA_TO_DEVICE, {Seg(0, 1, 1, 0x1000), Seg(4096, 2, 2, 0x2000)});
  e.buffer_id = 5;
  v1::LineFinding same = Line(2, v1::LINE_MISPLACED, 66);
  same.set_found_buffer(5);
  e.findings.push_back(same);
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(r.displacement(), 64 * 64);
  e.findings[0].set_found_buffer(9);  // another buffer's line: no displacement to give
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_NE(r.detail().find("another buffer (9)"), std::string::npos) << r.detail();
}

TEST(Oracle, CanaryChangeIsStrayDmaEvenIfTheBufferIsRight) {
  Evidence e = Ev(v1::DMA_FROM_DEVICE, {Seg(0, 1, 1, 0x1000)});
  e.canary_mismatches = 3;
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STRAY_DMA);
}

TEST(Oracle, TornAndZeroLines) {
  Evidence e = Ev(v1::DMA_FROM_DEVICE, {Seg(0, 1, 1, 0x1000)});
  e.findings.push_back(Line(1, v1::LINE_TORN));
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_TORN_LINE);
  e.findings = {Line(1, v1::LINE_ZERO)};
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_NEVER_LANDED);
}

}  // namespace
}  // namespace dmahil::controller

namespace dmahil::controller {
namespace {

TEST(Oracle, BounceHandedOutWithoutTheDmaOffsetIsAWrongBusAddress) {
  // swiotlb bounced to CPU 0x2e000000, which the device reaches at bus 0xee000000.
  Evidence e = Ev(v1::DMA_TO_DEVICE, {Seg(0, 0x2f000, 0x100000, 0x2e000000, true)}, 32);
  v1::FixtureResult r;
  Diagnose(Rpi4Like(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(r.displacement(), -0xc0000000LL);
  EXPECT_EQ(r.segments(0).expected_dma_addr(), 0xee000000u);
}

TEST(Oracle, AnIncompleteMappingIsAnErrorNotAPass) {
  Evidence e = Ev(v1::DMA_TO_DEVICE, {Seg(0, 1, 1, 0x1000)});
  e.buffer_bytes = 2 * 4096;  // two pages asked, one segment returned
  v1::FixtureResult r;
  Diagnose(Flat64(), e, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(r.detail().find("covers 0x1000 of 0x2000"), std::string::npos) << r.detail();
  Evidence none = Ev(v1::DMA_TO_DEVICE, {});
  none.buffer_bytes = 4096;
  Diagnose(Flat64(), none, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_ERROR);
}

TEST(Oracle, PfnBasedAddressOfAPageThatShouldHaveBouncedIsAWrongBusAddress) {
  // rpi4: the machine frame is above the 1 GiB dma-ranges window; dma-direct handed out
  // the reachable pfn-based address instead of bouncing.
  Evidence e = Ev(v1::DMA_TO_DEVICE, {Seg(0, 0x2f001, 0x100001, 0xef001000)}, 32);
  v1::FixtureResult r;
  Diagnose(Rpi4Like(), e, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(r.displacement(), (0x2f001LL - 0x100001LL) * 4096);
  EXPECT_NE(r.detail().find("should have bounced"), std::string::npos) << r.detail();
}

TEST(Oracle, UnreachableSegmentsAreFlagged) {
  v1::FixtureResult r;
  Diagnose(Flat64(), Ev(v1::DMA_TO_DEVICE, {Seg(0, 0x3f000, 0x800000, 0x800000000)}, 32), &r);
  EXPECT_TRUE(r.segments(0).unreachable());
}

}  // namespace
}  // namespace dmahil::controller
