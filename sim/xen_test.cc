#include "sim/xen.h"

#include <gtest/gtest.h>

#include "sim/error.h"
#include "sim/test_support.h"

namespace dmahil::sim {
namespace {

class XenTest : public ::testing::Test {
 protected:
  XenTest()
      : board_(testing::LoadShippedBoard("zcu102-virtual")),
        mem_(std::vector<v1::MemoryBank>(board_.ram().begin(), board_.ram().end())),
        cache_(board_.cache(), mem_, 1),
        xen_(board_.xen(), cache_) {}
  v1::Board board_;
  MachineMemory mem_;
  Cache cache_;
  Xen xen_;
};

TEST_F(XenTest, Dom0IsOneToOneAndBalloonedPfnsAreHoles) {
  EXPECT_EQ(xen_.P2m(kDom0, 0x1234), 0x1234u);
  EXPECT_FALSE(xen_.P2m(kDom0, 0x3f000).has_value()) << "ballooned pfn without a grant";
  EXPECT_TRUE(xen_.Dom0PfnValid(0x3f000));
  EXPECT_FALSE(xen_.Dom0PfnValid(0x40000)) << "domU memory is not dom0 RAM";
}

TEST_F(XenTest, ForeignGrantMappedAtBalloonedPfn) {
  const auto gfns = xen_.PopulateDomU(2, v1::PLACEMENT_NEEDS_BOUNCE, board_.dma(), 32);
  ASSERT_EQ(gfns.size(), 2u);
  EXPECT_EQ(gfns[0], 0x40000u) << "GUEST_RAM0_BASE";
  const uint32_t gref = xen_.GrantAccess(kDomU, gfns[1], kDom0);
  const uint64_t mfn = xen_.MapGrantRef(kDomU, gref, 0x3f000);
  EXPECT_GE(mfn << 12, uint64_t{1} << 32);
  EXPECT_EQ(xen_.P2m(kDom0, 0x3f000), mfn);
  EXPECT_EQ(xen_.P2m(kDomU, gfns[1]), mfn);
  EXPECT_THROW(xen_.EndAccess(kDomU, gref), SimError) << "still mapped";
  xen_.UnmapGrantRef(0x3f000);
  EXPECT_FALSE(xen_.P2m(kDom0, 0x3f000).has_value());
  xen_.EndAccess(kDomU, gref);
}

TEST_F(XenTest, UnknownGrefIsRefused) {
  try {
    xen_.MapGrantRef(kDomU, 999, 0x3f000);
    FAIL();
  } catch (const SimError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_NE(std::string(e.what()).find("GNTST_bad_gntref"), std::string::npos);
  }
}

TEST_F(XenTest, CacheFlushNeedsAGrantMapping) {
  const auto gfns = xen_.PopulateDomU(1, v1::PLACEMENT_ANY, board_.dma(), 64);
  const uint64_t mfn = *xen_.P2m(kDomU, gfns[0]);
  EXPECT_EQ(xen_.CacheFlush(mfn << 12, 0, 4096, kGnttabCacheClean), -22)
      << "dom0 has no mapping of the domU frame";
  const uint32_t gref = xen_.GrantAccess(kDomU, gfns[0], kDom0);
  xen_.MapGrantRef(kDomU, gref, 0x3f001);
  EXPECT_EQ(xen_.CacheFlush(mfn << 12, 0, 4096, kGnttabCacheClean), 0);
  EXPECT_EQ(xen_.CacheFlush(0x3f001000, 0, 4096, kGnttabCacheClean), -1)
      << "the ballooned pfn's own frame belongs to nobody: -EPERM";
  EXPECT_EQ(xen_.CacheFlush(mfn << 12, 4000, 200, kGnttabCacheClean), -22) << "crosses the page";
}

TEST_F(XenTest, CacheFlushCleansTheMachineLine) {
  const auto gfns = xen_.PopulateDomU(1, v1::PLACEMENT_ANY, board_.dma(), 64);
  const uint64_t mfn = *xen_.P2m(kDomU, gfns[0]);
  xen_.MapGrantRef(kDomU, xen_.GrantAccess(kDomU, gfns[0], kDom0), 0x3f002);
  const uint8_t v = 0x99;
  cache_.Write((mfn << 12) + 64, &v, 1);
  ASSERT_EQ(xen_.CacheFlush(mfn << 12, 64, 64, kGnttabCacheClean), 0);
  uint8_t m = 0;
  mem_.Read((mfn << 12) + 64, &m, 1);
  EXPECT_EQ(m, 0x99);
}

}  // namespace
}  // namespace dmahil::sim
