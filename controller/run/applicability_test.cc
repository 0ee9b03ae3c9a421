#include "controller/run/applicability.h"

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "common/validate.h"

namespace dmahil::controller {
namespace {

std::string Source() {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  return root != nullptr ? root : ".";
}
v1::Board Board(const std::string& name) { return LoadBoard(Source() + "/boards/" + name); }
v1::Fixture Fixture(const std::string& name) {
  return LoadFixture(Source() + "/fixtures/" + name + ".textproto");
}

TEST(Applicability, EveryShippedFixtureRunsOnTheShippedVirtualBoards) {
  for (const char* board : {"zcu102-virtual.textproto", "rpi4-virtual.textproto",
                            "zcu102-smmu-virtual.textproto", "zcu102-64k-virtual.textproto"})
    for (const char* fx :
         {"foreign-to-device", "foreign-from-device", "foreign-bounce-to-device",
          "foreign-bounce-from-device", "foreign-double-map-from-device", "foreign-reuse-to-device",
          "foreign-reuse-from-device", "foreign-bidirectional", "mixed-sg-to-device",
          "mixed-sg-from-device", "foreign-partial-line-to-device",
          "foreign-partial-line-from-device", "local-to-device", "local-from-device"})
      EXPECT_EQ(NotApplicableReason(Board(board), Fixture(fx)), "") << board << " / " << fx;
}

TEST(Applicability, NoBounceWhereTheSwiotlbPoolIsBeyondTheMask) {
  const v1::Board high = Board("zcu102-ddr-high-virtual.textproto");
  const std::string why = NotApplicableReason(high, Fixture("foreign-bounce-to-device"));
  EXPECT_NE(why.find("no bounce is possible"), std::string::npos) << why;
  EXPECT_NE(why.find("32-bit mask"), std::string::npos) << why;
  // The same memory with a 64-bit mask needs no bounce and is reachable.
  EXPECT_EQ(NotApplicableReason(high, Fixture("foreign-to-device")), "");
}

TEST(Applicability, APlacementNoFrameMeetsIsNotApplicable) {
  v1::Board rpi4 = Board("rpi4-virtual.textproto");
  // Without domU RAM above 4 GiB nothing is beyond a 32-bit device's dma-ranges window.
  rpi4.mutable_xen()->mutable_domu_ram()->RemoveLast();
  const std::string why = NotApplicableReason(rpi4, Fixture("foreign-bounce-from-device"));
  EXPECT_NE(why.find("domU pages beyond the device's reach"), std::string::npos) << why;
  EXPECT_NE(why.find("has 0"), std::string::npos) << why;
}

TEST(Applicability, PartialLinesNeedALineLongerThanTheirBytes) {
  v1::Fixture fx = Fixture("foreign-partial-line-to-device");
  fx.set_partial_bytes(64);
  const std::string why = NotApplicableReason(Board("zcu102-virtual.textproto"), fx);
  EXPECT_NE(why.find("partial_bytes 64 is not below the board's 64-byte cache line"),
            std::string::npos)
      << why;
  // The agent's line size wins over the board file's.
  EXPECT_EQ(NotApplicableReason(Board("zcu102-virtual.textproto"), fx, 128), "");
}

TEST(Applicability, TheLinuxXenBackendCannotComposeNorGrantTwice) {
  const v1::Board qemu = Board("qemu-xen-arm64.textproto");
  EXPECT_NE(NotApplicableReason(qemu, Fixture("mixed-sg-to-device")).find("ComposeBuffer"),
            std::string::npos);
  EXPECT_NE(NotApplicableReason(qemu, Fixture("foreign-double-map-from-device")).find("gntalloc"),
            std::string::npos);
  EXPECT_EQ(NotApplicableReason(qemu, Fixture("foreign-to-device")), "");
}

}  // namespace
}  // namespace dmahil::controller
