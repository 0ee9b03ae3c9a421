// The maintenance audit against recorded operations shaped like what dmahil.ko saw under
// Xen 4.17 / Linux 6.1 (agent/kmod smoke test): the stock kernel's records pass, and each
// fault the module can switch on (no maintenance; maintenance one page off) is caught
// with its own diagnosis.
#include "controller/run/maintenance_audit.h"

#include <gtest/gtest.h>

#include "controller/run/oracle.h"

namespace dmahil::controller {
namespace {

constexpr uint64_t kPfn = 0x6355d, kBfn = 0xba834;

v1::Board NonCoherent() {
  v1::Board b;
  b.set_name("qemu-xen-arm64-noncoherent");
  b.mutable_dma()->set_mask_bits(64);
  b.mutable_dma()->set_coherent(false);
  return b;
}

v1::DmaSegment Foreign(uint64_t offset = 0, uint32_t length = 4096) {
  v1::DmaSegment s;
  s.set_offset(offset);
  s.set_length(length);
  s.set_pfn(kPfn);
  s.set_bfn(kBfn);
  s.set_dma_addr((kBfn << 12) + offset % 4096);
  s.set_foreign(true);
  return s;
}

v1::Maintenance Ops(std::initializer_list<v1::CacheOp> ops) {
  v1::Maintenance m;
  m.set_audited(true);
  for (const v1::CacheOp& op : ops) *m.add_ops() = op;
  return m;
}

v1::CacheOp Op(v1::CacheOpKind kind, bool clean, uint64_t addr, uint32_t length = 4096) {
  v1::CacheOp op;
  op.set_kind(kind);
  op.set_clean(clean);
  op.set_invalidate(!clean);
  op.set_addr(addr);
  op.set_length(length);
  return op;
}

constexpr auto kHyp = v1::CACHE_OP_HYPERCALL;
constexpr auto kArch = v1::CACHE_OP_ARCH_SYNC;
constexpr auto kBefore = MaintenancePhase::kBeforeDevice;
constexpr auto kAfter = MaintenancePhase::kAfterDevice;

TEST(MaintenanceAudit, TheStockKernelsForeignPageRecordsPassInEveryDirection) {
  const uint64_t m = kBfn << 12;
  EXPECT_FALSE(AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()},
                                {{kBefore, Ops({Op(kHyp, true, m)})}, {kAfter, Ops({})}}));
  EXPECT_FALSE(AuditMaintenance(
      NonCoherent(), v1::DMA_FROM_DEVICE, {Foreign()},
      {{kBefore, Ops({Op(kHyp, false, m)})}, {kAfter, Ops({Op(kHyp, false, m)})}}));
  EXPECT_FALSE(
      AuditMaintenance(NonCoherent(), v1::DMA_BIDIRECTIONAL, {Foreign()},
                       {{kBefore, Ops({Op(kHyp, true, m)})}, {kAfter, Ops({Op(kHyp, false, m)})}}));
}

TEST(MaintenanceAudit, ADom0LocalGrantCleanedThroughItsPfnPasses) {
  // xen_swiotlb_map_page: bfn inside dom0 RAM -> arch_sync_dma_for_device(paddr of the
  // ballooned pfn); unmap syncs by the bus frame.
  EXPECT_FALSE(AuditMaintenance(NonCoherent(), v1::DMA_FROM_DEVICE, {Foreign()},
                                {{kBefore, Ops({Op(kArch, true, kPfn << 12)})},
                                 {kAfter, Ops({Op(kArch, false, kBfn << 12)})}}));
}

TEST(MaintenanceAudit, NoCleanBeforeTheDeviceReadsIsMissingMaintenance) {
  // dmahil.ko faults=2: mapped with DMA_ATTR_SKIP_CPU_SYNC.
  const auto f = AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()},
                                  {{kBefore, Ops({})}, {kAfter, Ops({})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->verdict, v1::VERDICT_FAIL);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE);
  EXPECT_NE(f->detail.find("no clean before the device read of pfn 0x6355d"), std::string::npos)
      << f->detail;
  EXPECT_NE(f->detail.find("bfn 0xba834"), std::string::npos) << f->detail;
}

TEST(MaintenanceAudit, AnInvalidateInsteadOfACleanForTheDeviceReadIsMissing) {
  const auto f = AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()},
                                  {{kBefore, Ops({Op(kHyp, false, kBfn << 12)})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE);
}

TEST(MaintenanceAudit, NoInvalidateBeforeTheCpuReadsIsMissingMaintenance) {
  const auto f =
      AuditMaintenance(NonCoherent(), v1::DMA_FROM_DEVICE, {Foreign()},
                       {{kBefore, Ops({Op(kHyp, false, kBfn << 12)})}, {kAfter, Ops({})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE);
  EXPECT_NE(f->detail.find("invalidate before the CPU read"), std::string::npos) << f->detail;
}

TEST(MaintenanceAudit, MaintenanceOnePageOffIsMisaddressedWithItsDisplacement) {
  // dmahil.ko faults=4: dma_sync_single_for_device(dma_addr + 4096).
  const auto f = AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()},
                                  {{kBefore, Ops({Op(kHyp, true, (kBfn + 1) << 12)})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE);
  EXPECT_EQ(f->displacement, 4096);
  EXPECT_NE(f->detail.find("+0x1000"), std::string::npos) << f->detail;
}

TEST(MaintenanceAudit, AHypercallByTheForeignPagesPfnIsMisaddressed) {
  // The 2014 cache-flush-local-addr bug: GNTTABOP_cache_flush given dom0's pfn.
  const auto f = AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()},
                                  {{kBefore, Ops({Op(kHyp, true, kPfn << 12)})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE);
  EXPECT_EQ(f->displacement, static_cast<int64_t>((kPfn - kBfn) << 12));
}

TEST(MaintenanceAudit, HalfAPageCleanedIsMissingTheOtherHalf) {
  const auto f = AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()},
                                  {{kBefore, Ops({Op(kHyp, true, kBfn << 12, 2048)})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE);
  EXPECT_NE(f->detail.find("2048 of 4096 bytes"), std::string::npos) << f->detail;
}

v1::DmaSegment ForeignAt(uint32_t page, uint64_t bfn) {
  v1::DmaSegment s = Foreign(page * 4096ull);
  s.set_pfn(kPfn + page);
  s.set_bfn(bfn);
  s.set_dma_addr(bfn << 12);
  return s;
}

TEST(MaintenanceAudit, OnePageOfSeveralSkippedIsMissingNotItsNeighboursOp) {
  // Contiguous bus frames: page 1's op is one page from page 0, but page 0 has none.
  const std::vector<v1::DmaSegment> segs = {ForeignAt(0, kBfn), ForeignAt(1, kBfn + 1),
                                            ForeignAt(2, kBfn + 2)};
  const auto f = AuditMaintenance(
      NonCoherent(), v1::DMA_TO_DEVICE, segs,
      {{kBefore, Ops({Op(kHyp, true, (kBfn + 1) << 12), Op(kHyp, true, (kBfn + 2) << 12)})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE);
  EXPECT_NE(f->detail.find("pfn 0x6355d"), std::string::npos) << f->detail;
}

TEST(MaintenanceAudit, EveryPageOnePageOffIsMisaddressedByOnePage) {
  // dmahil.ko faults=4 on three contiguous frames: each op lands on the next page.
  const std::vector<v1::DmaSegment> segs = {ForeignAt(0, kBfn), ForeignAt(1, kBfn + 1),
                                            ForeignAt(2, kBfn + 2)};
  const auto f = AuditMaintenance(
      NonCoherent(), v1::DMA_TO_DEVICE, segs,
      {{kBefore, Ops({Op(kHyp, true, (kBfn + 1) << 12), Op(kHyp, true, (kBfn + 2) << 12),
                      Op(kHyp, true, (kBfn + 3) << 12)})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE);
  EXPECT_EQ(f->displacement, 4096);
}

TEST(MaintenanceAudit, ABouncedPageIsMaintainedAtItsSwiotlbSlot) {
  v1::DmaSegment s = Foreign();
  s.set_bounced(true);
  s.set_dma_addr(0x7782e000);  // the slot in dom0's swiotlb pool
  EXPECT_FALSE(AuditMaintenance(NonCoherent(), v1::DMA_FROM_DEVICE, {s},
                                {{kBefore, Ops({Op(kArch, true, 0x7782e000)})},
                                 {kAfter, Ops({Op(kArch, false, 0x7782e000)})}}));
  // Maintaining the original frame instead leaves the slot the device used unmaintained.
  const auto f = AuditMaintenance(NonCoherent(), v1::DMA_FROM_DEVICE, {s},
                                  {{kBefore, Ops({Op(kArch, true, 0x7782e000)})},
                                   {kAfter, Ops({Op(kHyp, false, kBfn << 12)})}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE);
}

TEST(MaintenanceAudit, WithoutRecordsThereIsNothingToAuditAndDroppedRecordsAreAnError) {
  v1::Maintenance unknown;  // the sim backend: audited false
  EXPECT_FALSE(AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()},
                                {{kBefore, unknown}, {kAfter, unknown}}));
  v1::Maintenance dropped = Ops({Op(kHyp, true, kBfn << 12)});
  dropped.set_dropped(3);
  const auto f =
      AuditMaintenance(NonCoherent(), v1::DMA_TO_DEVICE, {Foreign()}, {{kBefore, dropped}});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->verdict, v1::VERDICT_ERROR);
}

TEST(MaintenanceAudit, TheOracleFailsAMissingCleanEvenThoughTheDataMatched) {
  Evidence ev;
  ev.direction = v1::DMA_TO_DEVICE;
  ev.buffer_bytes = 4096;
  ev.segments = {Foreign()};
  ev.lines_checked = 64;
  ev.maintenance = {{kBefore, Ops({})}, {kAfter, Ops({})}};
  v1::FixtureResult r;
  Diagnose(NonCoherent(), ev, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_MISSING_MAINTENANCE);
  EXPECT_NE(r.detail().find("data matched"), std::string::npos) << r.detail();

  v1::Board coherent = NonCoherent();
  coherent.mutable_dma()->set_coherent(true);  // the kernel rightly issues nothing
  v1::FixtureResult ok;
  Diagnose(coherent, ev, &ok);
  EXPECT_EQ(ok.verdict(), v1::VERDICT_PASS) << ok.detail();
}

}  // namespace
}  // namespace dmahil::controller
