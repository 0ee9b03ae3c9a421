// The driver audit on records shaped as dmahil.ko's DMA-API audit gives them
// (agent/kmod/dev_audit.c through the agent's DeviceOps): a real driver's map_sg and
// unmap_sg of a PV block request's foreign pages, right, and with each fault the
// interposer or a broken kernel can produce.
#include "controller/run/driver_audit.h"

#include <gtest/gtest.h>

#include "controller/run/oracle.h"

namespace dmahil::controller {
namespace {

constexpr uint64_t kPfn = 0x6bb80, kBfn = 0xbb1e0;  // a domU's frame mapped in dom0

v1::CacheOp Op(bool clean, uint64_t addr, uint32_t length = 4096) {
  v1::CacheOp c;
  c.set_kind(v1::CACHE_OP_HYPERCALL);
  c.set_clean(clean);
  c.set_invalidate(!clean);
  c.set_addr(addr);
  c.set_length(length);
  return c;
}

/// One map_sg call of `pages` foreign pages in `dir` and its unmap_sg; `map_clean`,
/// `unmap_inval`: the maintenance the kernel issued (at `maint_shift` bytes off).
v1::DeviceOps MapUnmap(v1::DmaDirection dir, uint32_t pages, bool map_clean, bool unmap_inval,
                       int64_t addr_shift = 0, int64_t maint_shift = 0) {
  v1::DeviceOps ops;
  ops.set_maintenance_audited(true);
  for (uint32_t i = 0; i < pages; ++i) {
    v1::DeviceOp* op = ops.add_ops();
    op->set_call(1);
    op->set_kind(v1::DEVICE_OP_MAP);
    op->set_direction(dir);
    op->set_pfn(kPfn + i);
    op->set_bfn(kBfn + i);
    op->set_expected_dma_addr((kBfn + i) << 12);
    op->set_dma_addr(((kBfn + i) << 12) + addr_shift);
    op->set_length(4096);
    op->set_foreign(true);
  }
  if (map_clean)
    for (uint32_t i = 0; i < pages; ++i)
      *ops.mutable_ops(0)->add_maintenance() = Op(true, ((kBfn + i) << 12) + maint_shift);
  for (uint32_t i = 0; i < pages; ++i) {
    v1::DeviceOp* op = ops.add_ops();
    op->set_call(2);
    op->set_kind(v1::DEVICE_OP_UNMAP);
    op->set_direction(dir);
    op->set_dma_addr(((kBfn + i) << 12) + addr_shift);
    op->set_length(4096);
    if (i == 0 && unmap_inval)
      for (uint32_t j = 0; j < pages; ++j)
        *op->add_maintenance() = Op(false, ((kBfn + j) << 12) + maint_shift);
  }
  return ops;
}

DriverEvidence Evidence(const v1::DeviceOps& ops, bool read_path, bool coherent) {
  DriverEvidence ev;
  ev.device = "nvme at 0000:00:03.0";
  ev.coherent = coherent;
  ev.maintenance_audited = ops.maintenance_audited();
  ev.dropped = ops.dropped();
  GroupDriverOps(ops, read_path, &ev.mappings);
  return ev;
}

v1::Board NonCoherent() {
  v1::Board b;
  b.mutable_dma()->set_coherent(false);
  b.mutable_dma()->set_mask_bits(64);
  return b;
}

TEST(DriverAudit, AMapSgAndItsUnmapAreOneMappingAndPassWithTheirMaintenance) {
  const DriverEvidence w =
      Evidence(MapUnmap(v1::DMA_TO_DEVICE, 4, true, false), false, /*coherent=*/false);
  ASSERT_EQ(w.mappings.size(), 1u);
  EXPECT_EQ(w.mappings[0].segments.size(), 4u);
  EXPECT_TRUE(w.mappings[0].unmapped);
  EXPECT_EQ(w.mappings[0].segments[3].offset(), 3u * 4096);
  EXPECT_EQ(AuditDriver(NonCoherent(), w), std::nullopt);
  const std::vector<v1::SegmentReport> pages = DriverForeignPages(w);
  ASSERT_EQ(pages.size(), 4u);
  EXPECT_EQ(pages[2].pfn(), kPfn + 2);
  EXPECT_EQ(pages[2].expected_dma_addr(), (kBfn + 2) << 12);
  EXPECT_NE(DescribeDriver(w).find("made 1 mappings, 4 entries on foreign pages (0 bounced)"),
            std::string::npos)
      << DescribeDriver(w);
  EXPECT_NE(DescribeDriver(w).find("as each direction needs in the 1 unmapped"), std::string::npos)
      << DescribeDriver(w);

  const DriverEvidence r =
      Evidence(MapUnmap(v1::DMA_FROM_DEVICE, 2, false, true), true, /*coherent=*/false);
  // FROM_DEVICE wants a clean or invalidate before the device writes: none at map.
  std::optional<DriverFinding> f = AuditDriver(NonCoherent(), r);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE);
  EXPECT_EQ(f->detail.rfind("read path: nvme at 0000:00:03.0's DMA_FROM_DEVICE mapping", 0), 0u)
      << f->detail;
  // The same records on a coherent controller need no maintenance.
  EXPECT_EQ(AuditDriver(NonCoherent(), Evidence(MapUnmap(v1::DMA_FROM_DEVICE, 2, false, true), true,
                                                /*coherent=*/true)),
            std::nullopt);
}

TEST(DriverAudit, APfnBasedBusAddressIsAWrongBusAddressOnItsPath) {
  const int64_t shift = -static_cast<int64_t>((kBfn - kPfn) << 12);  // dma-ops-bypass-xen
  const DriverEvidence ev =
      Evidence(MapUnmap(v1::DMA_TO_DEVICE, 2, true, false, shift), false, true);
  const std::optional<DriverFinding> f = AuditDriver(NonCoherent(), ev);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(f->displacement, shift);
  EXPECT_EQ(f->detail.rfind("write path: nvme at 0000:00:03.0 mapped foreign pfn 0x6bb80", 0), 0u)
      << f->detail;
  EXPECT_EQ(f->path, v1::IO_PATH_WRITE);
  // Bounced, another address is the pool's slot, not a fault.
  v1::DeviceOps bounced = MapUnmap(v1::DMA_TO_DEVICE, 1, true, false, 0x10000000);
  bounced.mutable_ops(0)->set_bounced(true);
  EXPECT_EQ(AuditDriver(NonCoherent(), Evidence(bounced, false, true)), std::nullopt);
}

TEST(DriverAudit, SkippedOrMisaddressedMaintenanceIsCaughtOnlyWhereTheDirectionNeedsIt) {
  // No clean before the device reads (the catalogue's skipped maintenance).
  std::optional<DriverFinding> f =
      AuditDriver(NonCoherent(), Evidence(MapUnmap(v1::DMA_TO_DEVICE, 2, false, false), false,
                                          /*coherent=*/false));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE) << f->detail;
  // Every clean one page off (maintenance at the wrong frame).
  f = AuditDriver(NonCoherent(), Evidence(MapUnmap(v1::DMA_TO_DEVICE, 2, true, false, 0, 0x1000),
                                          false, /*coherent=*/false));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE) << f->detail;
  EXPECT_EQ(f->displacement, 0x1000);
  // The invalidate after a BIDIRECTIONAL unmap missing: the read side of the mapping.
  v1::DeviceOps bidi = MapUnmap(v1::DMA_BIDIRECTIONAL, 1, true, false);
  f = AuditDriver(NonCoherent(), Evidence(bidi, true, /*coherent=*/false));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_MISSING_MAINTENANCE) << f->detail;
  // Without the probes armed nothing is judged (and DescribeDriver says so).
  bidi.set_maintenance_audited(false);
  const DriverEvidence unaudited = Evidence(bidi, true, false);
  EXPECT_EQ(AuditDriver(NonCoherent(), unaudited), std::nullopt);
  EXPECT_NE(DescribeDriver(unaudited).find("not audited"), std::string::npos);
}

TEST(DriverAudit, LostRecordsAreAnErrorAndUnknownUnmapsAreLeftOut) {
  v1::DeviceOps ops = MapUnmap(v1::DMA_TO_DEVICE, 1, true, false);
  ops.set_dropped(3);
  std::optional<DriverFinding> f = AuditDriver(NonCoherent(), Evidence(ops, false, true));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->verdict, v1::VERDICT_ERROR);
  EXPECT_NE(f->detail.find("lost 3 records"), std::string::npos) << f->detail;

  DriverEvidence direct;  // the device has no DMA-mapping ops: dma-direct under Xen
  direct.device = "nvme at 0000:00:03.0";
  direct.dma_direct = true;
  f = AuditDriver(NonCoherent(), direct);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_NE(f->detail.find("no DMA-mapping ops in dom0"), std::string::npos) << f->detail;

  v1::DeviceOps stray;  // an unmap of something mapped before the watch
  v1::DeviceOp* op = stray.add_ops();
  op->set_call(9);
  op->set_kind(v1::DEVICE_OP_UNMAP);
  op->set_dma_addr(0x1234000);
  EXPECT_TRUE(Evidence(stray, false, true).mappings.empty());
}

// Through the oracle: a PV block iteration whose data matched still fails on the driver's
// wrong bus address, and a passing one reports the driver's foreign pages.
TEST(DriverAudit, TheOracleFailsOnTheDriverBeforeTheDataAndReportsItsPages) {
  controller::Evidence ev;
  ev.direction = v1::DMA_TO_DEVICE;
  ev.buffer_bytes = 4096;
  ev.lines_checked = 64;
  ev.segments_known = false;
  ev.driver = Evidence(MapUnmap(v1::DMA_TO_DEVICE, 1, true, false, 0x2000), false, true);
  v1::FixtureResult r;
  Diagnose(NonCoherent(), ev, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(r.displacement(), 0x2000);
  ev.driver = Evidence(MapUnmap(v1::DMA_TO_DEVICE, 1, true, false), false, true);
  Diagnose(NonCoherent(), ev, &r);
  EXPECT_EQ(r.verdict(), v1::VERDICT_PASS) << r.detail();
  ASSERT_EQ(r.segments_size(), 1);
  EXPECT_EQ(r.segments(0).bfn(), kBfn);
  EXPECT_TRUE(r.segments(0).foreign());
}

// With persistent grants xen-blkfront copies a read out of its grant pages: a bounce not
// copied back leaves an older request's data there, which the lines' classes would call
// stale or misplaced. Mappings at their right addresses, every read page bounced: the data
// never landed, on the read path.
TEST(DriverAudit, WrongReadDataBehindBouncedMappingsIsABounceNotCopiedBack) {
  v1::DeviceOps read = MapUnmap(v1::DMA_FROM_DEVICE, 2, false, false, 0x10000000);
  for (v1::DeviceOp& op : *read.mutable_ops())
    if (op.kind() == v1::DEVICE_OP_MAP) op.set_bounced(true);
  DriverEvidence ev = Evidence(read, true, /*coherent=*/true);
  EXPECT_EQ(ReadNotCopiedBack(ev, 0), std::nullopt);  // the data was right
  std::optional<DriverFinding> f = ReadNotCopiedBack(ev, 64);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->diagnosis, v1::DIAGNOSIS_NEVER_LANDED);
  EXPECT_EQ(f->path, v1::IO_PATH_READ);
  EXPECT_NE(
      f->detail.find("bounced every foreign page it mapped for the read (2 entries in 1 mappings)"),
      std::string::npos)
      << f->detail;

  // Through the oracle: the data's classes do not decide.
  controller::Evidence data;
  data.direction = v1::DMA_FROM_DEVICE;
  data.buffer_bytes = 8192;
  data.lines_checked = 128;
  data.segments_known = false;
  data.driver = ev;
  for (uint32_t line = 0; line < 64; ++line) {
    v1::LineFinding lf;
    lf.set_line(line);
    lf.set_cls(v1::LINE_STALE);
    data.findings.push_back(lf);
  }
  v1::FixtureResult r;
  Diagnose(NonCoherent(), data, &r);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_NEVER_LANDED) << r.detail();
  EXPECT_EQ(r.io_path(), v1::IO_PATH_READ);

  // One read page the device wrote directly: the bounce is not the whole story.
  v1::DeviceOps mixed = read;
  mixed.mutable_ops(1)->set_bounced(false);
  EXPECT_EQ(ReadNotCopiedBack(Evidence(mixed, true, true), 64), std::nullopt);
  // Write-path mappings alone say nothing about the read.
  EXPECT_EQ(ReadNotCopiedBack(Evidence(read, false, true), 64), std::nullopt);
}

}  // namespace
}  // namespace dmahil::controller
