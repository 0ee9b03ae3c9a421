// The model for each DMA direction, with and without each fault, on foreign grant pages:
// the docs/architecture.md §5 transaction driven directly on the model, data checked with the
// pattern engine.
#include "sim/linux_dma.h"

#include <vector>

#include <gtest/gtest.h>

#include "common/pattern.h"
#include "sim/error.h"
#include "sim/test_support.h"
#include "sim/virtual_board.h"

namespace dmahil::sim {
namespace {

constexpr uint32_t kPages = 8;
constexpr uint64_t kBytes = kPages * kXenPageSize;

struct Outcome {
  uint64_t bad_lines = 0;  // lines the checker (device or CPU) found wrong
  bool bus_error = false;
  std::vector<PageMapping> maps;
  std::vector<uint64_t> expected;  // ExpectedDma per page
};

pattern::Spec Spec(uint32_t gen, uint32_t first_line = 0) {
  return pattern::Spec{42, 7, gen, first_line, 64};
}

Outcome RunTransaction(const std::string& board_name, std::vector<std::string> faults,
                       v1::DmaDirection dir, v1::Placement placement = v1::PLACEMENT_REACHABLE,
                       uint32_t mask_bits = 0, bool double_map = false) {
  VirtualBoard vb(testing::LoadShippedBoard(board_name), FaultSet::Parse(faults), 1234);
  Outcome out;
  if (mask_bits) vb.dma().SetMask(mask_bits);
  const auto gfns =
      vb.xen().PopulateDomU(kPages, placement, vb.board().dma(), vb.dma().mask_bits());
  auto map_all = [&] {
    const std::vector<uint64_t> pfns = vb.dma().AllocBallooned(kPages);
    for (size_t i = 0; i < gfns.size(); ++i)
      vb.dma().SetForeignP2m(
          pfns[i],
          vb.xen().MapGrantRef(kDomU, vb.xen().GrantAccess(kDomU, gfns[i], kDom0), pfns[i]));
    return pfns;
  };
  std::vector<uint64_t> pfns = map_all();
  if (double_map) {  // the same frames at other pfns; the first mapping goes away
    const std::vector<uint64_t> second = map_all();
    for (uint64_t pfn : pfns) {
      vb.xen().UnmapGrantRef(pfn);
      vb.dma().ClearForeignP2m(pfn);
    }
    pfns = second;
  }
  const uint64_t gpa = gfns[0] << kXenPageShift;
  std::vector<uint8_t> buf(kBytes);
  // Old generation in memory, cache empty.
  pattern::Fill(Spec(1), buf.data(), kBytes);
  vb.CpuWrite(kDomU, gpa, buf.data(), kBytes);
  vb.CpuCleanInvalidate(kDomU, gpa, kBytes);
  if (dir == v1::DMA_TO_DEVICE) {
    pattern::Fill(Spec(2), buf.data(), kBytes);
    vb.CpuWrite(kDomU, gpa, buf.data(), kBytes);  // dirty lines: the prime
  }
  for (uint64_t pfn : pfns) {
    out.maps.push_back(vb.dma().MapPage(pfn << kXenPageShift, kXenPageSize, dir));
    out.expected.push_back(vb.dma().ExpectedDma(pfn << kXenPageShift));
  }
  if (dir == v1::DMA_FROM_DEVICE) {
    for (uint64_t pfn : pfns) vb.dma().CpuRead(pfn << kXenPageShift, buf.data(), kXenPageSize);
  }
  std::vector<uint8_t> page(kXenPageSize);
  for (uint32_t p = 0; p < kPages; ++p) {
    uint64_t fault = 0;
    const uint32_t first_line = p * 64;
    if (dir == v1::DMA_TO_DEVICE) {
      if (!vb.device().Read(out.maps[p].dma_addr, page.data(), kXenPageSize, &fault)) {
        out.bus_error = true;
        out.bad_lines += 64;
        continue;
      }
      out.bad_lines += 64 - pattern::Check(Spec(2, first_line), page.data(), kXenPageSize,
                                           [](const pattern::Finding&) {});
    } else {
      pattern::Fill(Spec(2, first_line), page.data(), kXenPageSize);
      if (!vb.device().Write(out.maps[p].dma_addr, page.data(), kXenPageSize, &fault))
        out.bus_error = true;
    }
  }
  for (uint32_t p = 0; p < kPages; ++p) vb.dma().UnmapPage(out.maps[p].dma_addr, kXenPageSize, dir);
  if (dir == v1::DMA_FROM_DEVICE) {
    vb.CpuRead(kDomU, gpa, buf.data(), kBytes);
    out.bad_lines +=
        kBytes / 64 - pattern::Check(Spec(2), buf.data(), kBytes, [](const pattern::Finding&) {});
  }
  return out;
}

class Direction : public ::testing::TestWithParam<v1::DmaDirection> {};

TEST_P(Direction, CleanZcu102ForeignPagesUseTheMachineFrame) {
  const Outcome o = RunTransaction("zcu102-virtual", {}, GetParam());
  EXPECT_EQ(o.bad_lines, 0u);
  for (size_t p = 0; p < o.maps.size(); ++p) {
    EXPECT_EQ(o.maps[p].dma_addr, o.expected[p]);
    EXPECT_FALSE(o.maps[p].bounced);
  }
}

TEST_P(Direction, CleanRpi4AddsTheDmaRangesOffset) {
  const Outcome o = RunTransaction("rpi4-virtual", {}, GetParam());
  EXPECT_EQ(o.bad_lines, 0u);
  EXPECT_GE(o.maps[0].dma_addr, 0xc0000000u);
}

TEST_P(Direction, CleanAboveMaskBounces) {
  const Outcome o =
      RunTransaction("zcu102-virtual", {}, GetParam(), v1::PLACEMENT_NEEDS_BOUNCE, 32);
  EXPECT_EQ(o.bad_lines, 0u);
  for (const PageMapping& m : o.maps) {
    EXPECT_TRUE(m.bounced);
    EXPECT_LE(m.dma_addr, 0xffffffffu);
  }
}

TEST_P(Direction, DmaOpsBypassXenGivesPfnBasedAddresses) {
  const Outcome o = RunTransaction("zcu102-virtual", {"dma-ops-bypass-xen"}, GetParam());
  EXPECT_GT(o.bad_lines, 0u);
  for (size_t p = 0; p < o.maps.size(); ++p)
    EXPECT_NE(o.maps[p].dma_addr, o.expected[p]) << "page " << p;
}

TEST_P(Direction, DmaOpsBypassXenSkipsTheBounceItNeeds) {
  // dma-direct checks dma_capable() on the pfn (a low ballooned pfn), not the machine
  // frame above 4 GiB: no bounce, and the device goes to the pfn.
  const Outcome o = RunTransaction("zcu102-virtual", {"dma-ops-bypass-xen"}, GetParam(),
                                   v1::PLACEMENT_NEEDS_BOUNCE, 32);
  EXPECT_FALSE(o.maps[0].bounced);
  EXPECT_GT(o.bad_lines, 0u);
}

TEST_P(Direction, NoDmaOffsetIsOffByTheOffset) {
  const Outcome o = RunTransaction("rpi4-virtual", {"bus-addr-no-dma-offset"}, GetParam());
  EXPECT_TRUE(o.bus_error) << "bus addresses below 0xc0000000 do not decode on this bus";
  for (size_t p = 0; p < o.maps.size(); ++p)
    EXPECT_EQ(o.expected[p] - o.maps[p].dma_addr, 0xc0000000u);
}

TEST_P(Direction, NoDmaOffsetCannotManifestWithoutAnOffset) {
  EXPECT_EQ(RunTransaction("zcu102-virtual", {"bus-addr-no-dma-offset"}, GetParam()).bad_lines, 0u);
}

TEST_P(Direction, SmmuMapsDom0AndTheGrantsDom0Mapped) {
  EXPECT_EQ(RunTransaction("zcu102-smmu-virtual", {}, GetParam()).bad_lines, 0u);
}

TEST_P(Direction, GrantNotInIommuIsAnSmmuFault) {
  const Outcome o = RunTransaction("zcu102-smmu-virtual", {"grant-not-in-iommu"}, GetParam());
  EXPECT_TRUE(o.bus_error);
  EXPECT_EQ(o.maps[0].dma_addr, o.expected[0]) << "the address is right, the SMMU has no entry";
}

TEST_P(Direction, GrantNotInIommuCannotManifestWithoutAnSmmu) {
  EXPECT_EQ(RunTransaction("zcu102-virtual", {"grant-not-in-iommu"}, GetParam()).bad_lines, 0u);
}

INSTANTIATE_TEST_SUITE_P(Sim, Direction, ::testing::Values(v1::DMA_TO_DEVICE, v1::DMA_FROM_DEVICE),
                         [](const auto& p) { return v1::DmaDirection_Name(p.param); });

TEST(UnmapNoInvalidateForeign, StaleLinesFromDevice) {
  const Outcome o =
      RunTransaction("zcu102-virtual", {"unmap-no-invalidate-foreign"}, v1::DMA_FROM_DEVICE);
  EXPECT_GT(o.bad_lines, kBytes / 64 / 2) << "most primed lines stay stale";
}

TEST(UnmapNoInvalidateForeign, ToDeviceUnaffected) {
  EXPECT_EQ(RunTransaction("zcu102-virtual", {"unmap-no-invalidate-foreign"}, v1::DMA_TO_DEVICE)
                .bad_lines,
            0u);
}

TEST(SyncForDeviceCpuOp, MapIsRightTheReuseSyncIsNot) {
  // Map cleans correctly; the fault is in dma_sync_single_for_device only.
  EXPECT_EQ(
      RunTransaction("zcu102-virtual", {"sync-for-device-cpu-op"}, v1::DMA_TO_DEVICE).bad_lines,
      0u);
  for (const bool fault : {false, true}) {
    VirtualBoard vb(testing::LoadShippedBoard("zcu102-virtual"),
                    FaultSet::Parse(fault ? std::vector<std::string>{"sync-for-device-cpu-op"}
                                          : std::vector<std::string>{}),
                    9);
    const auto gfns = vb.xen().PopulateDomU(1, v1::PLACEMENT_REACHABLE, vb.board().dma(), 64);
    const uint64_t pfn = vb.dma().AllocBallooned(1)[0];
    vb.xen().MapGrantRef(kDomU, vb.xen().GrantAccess(kDomU, gfns[0], kDom0), pfn);
    const PageMapping m = vb.dma().MapPage(pfn << kXenPageShift, kXenPageSize, v1::DMA_TO_DEVICE);
    vb.dma().SyncForCpu(m.dma_addr, kXenPageSize, v1::DMA_TO_DEVICE);
    std::vector<uint8_t> page(kXenPageSize);
    pattern::Fill(Spec(5), page.data(), kXenPageSize);
    vb.CpuWrite(kDomU, gfns[0] << kXenPageShift, page.data(), kXenPageSize);  // dirty lines
    vb.dma().SyncForDevice(m.dma_addr, kXenPageSize, v1::DMA_TO_DEVICE);
    uint64_t fault_addr = 0;
    ASSERT_TRUE(vb.device().Read(m.dma_addr, page.data(), kXenPageSize, &fault_addr));
    const size_t ok = pattern::Check(Spec(5), page.data(), kXenPageSize, [](const auto&) {});
    if (fault) {
      EXPECT_LT(ok, 64u) << "sync_for_device must clean";
    } else {
      EXPECT_EQ(ok, 64u);
    }
  }
}

TEST(CacheFlushLocalAddr, DeviceReadsStaleMemory) {
  EXPECT_GT(
      RunTransaction("zcu102-virtual", {"cache-flush-local-addr"}, v1::DMA_TO_DEVICE).bad_lines,
      0u);
}

TEST(BounceNoCopyBack, DataNeverLands) {
  EXPECT_EQ(RunTransaction("zcu102-virtual", {"bounce-no-copy-back"}, v1::DMA_FROM_DEVICE,
                           v1::PLACEMENT_NEEDS_BOUNCE, 32)
                .bad_lines,
            kBytes / 64);
}

TEST(NoBounceAboveMask, DeviceTruncatesTheAddress) {
  const Outcome o = RunTransaction("zcu102-virtual", {"no-bounce-above-mask"}, v1::DMA_TO_DEVICE,
                                   v1::PLACEMENT_NEEDS_BOUNCE, 32);
  EXPECT_FALSE(o.maps[0].bounced);
  EXPECT_GT(o.bad_lines, 0u);
}

TEST(Grant64kOffset, AllButTheFirstGrantOfEach64kPageGetAWrongAddress) {
  const Outcome o = RunTransaction("zcu102-64k-virtual", {"grant-64k-offset"}, v1::DMA_TO_DEVICE);
  EXPECT_EQ(o.maps[0].dma_addr, o.expected[0]) << "slot 0 of the 64 KiB page";
  size_t wrong = 0;
  for (size_t p = 0; p < o.maps.size(); ++p) wrong += o.maps[p].dma_addr != o.expected[p];
  EXPECT_EQ(wrong, o.maps.size() - 1) << "the domU's frames are not machine-contiguous";
  EXPECT_GT(o.bad_lines, 0u);
}

TEST(Grant64kOffset, CleanAndCannotManifestWith4kPages) {
  EXPECT_EQ(RunTransaction("zcu102-64k-virtual", {}, v1::DMA_FROM_DEVICE).bad_lines, 0u);
  EXPECT_EQ(RunTransaction("zcu102-virtual", {"grant-64k-offset"}, v1::DMA_FROM_DEVICE).bad_lines,
            0u);
}

TEST(DoubleMapWrongFrame, SecondMappingStaysStaleOnceTheFirstIsGone) {
  EXPECT_EQ(
      RunTransaction("zcu102-virtual", {}, v1::DMA_FROM_DEVICE, v1::PLACEMENT_REACHABLE, 0, true)
          .bad_lines,
      0u)
      << "GNTTABOP_cache_flush finds the frame by its bus address";
  EXPECT_GT(RunTransaction("zcu102-virtual", {"double-map-wrong-frame"}, v1::DMA_FROM_DEVICE,
                           v1::PLACEMENT_REACHABLE, 0, true)
                .bad_lines,
            kBytes / 64 / 2);
  EXPECT_EQ(
      RunTransaction("zcu102-virtual", {"double-map-wrong-frame"}, v1::DMA_FROM_DEVICE).bad_lines,
      0u)
      << "a frame mapped once resolves to the right pfn";
}

TEST(FaultSet, UnknownFaultsAreRefused) {
  EXPECT_THROW(FaultSet::Parse({"no-such-fault"}), SimError);
  EXPECT_EQ(FaultSet::Parse({"dma-ops-bypass-xen"}).ToString(), "dma-ops-bypass-xen");
}

}  // namespace
}  // namespace dmahil::sim

namespace dmahil::sim {
namespace {

// Linux 6.1 generic pfn_valid() (include/linux/mmzone.h): an early memory section is valid
// across its whole span once it holds any RAM; sections are 128 MiB with 4 KiB pages and
// 512 MiB with 64 KiB pages (arch/arm64/include/asm/sparsemem.h).
TEST(PfnValid, WholeEarlyMemorySectionsAsLinux61) {
  v1::Board board = testing::LoadShippedBoard("zcu102-virtual");
  // dom0 RAM [0, 0x2f000000): ends 16 MiB before its last 128 MiB section does.
  board.mutable_xen()->mutable_dom0_ram(0)->set_size(0x2f000000);
  board.mutable_xen()->mutable_grant_map_region()->set_base(0x2e000000);
  board.mutable_xen()->mutable_swiotlb_pool()->set_base(0x2d000000);
  {
    VirtualBoard vb(board, FaultSet{}, 1);
    EXPECT_TRUE(vb.dma().PfnValid(0x2efff));
    EXPECT_TRUE(vb.dma().PfnValid(0x2f000)) << "past the bank, inside its section";
    EXPECT_TRUE(vb.dma().PfnValid(0x2ffff));
    EXPECT_FALSE(vb.dma().PfnValid(0x30000)) << "the next section holds no dom0 RAM";
    EXPECT_FALSE(vb.xen().Dom0PfnValid(0x2f000)) << "Xen's view stays exact per bank";
    EXPECT_FALSE(vb.dma().PfnValid(uint64_t{1} << 36)) << "beyond 48 physical bits";
  }
  board.set_linux_page_size(65536);
  {
    VirtualBoard vb(board, FaultSet{}, 1);
    EXPECT_TRUE(vb.dma().PfnValid(0x30000)) << "one 512 MiB section [0, 0x20000000) and ...";
    EXPECT_TRUE(vb.dma().PfnValid(0x3ffff)) << "[0x20000000, 0x40000000) holds dom0 RAM";
    EXPECT_FALSE(vb.dma().PfnValid(0x40000));
  }
}

}  // namespace
}  // namespace dmahil::sim
