#include "agent/vboard.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "common/scratch_dir_test_support.h"
#include "sim/faults.h"

namespace dmahil::agent {
namespace {

namespace fs = std::filesystem;

class BootRevisionTest : public dmahil::testing::ScratchDirTest {
 protected:
  BootRevisionTest() : ScratchDirTest("bootrev") {}
};

TEST_F(BootRevisionTest, DecidesEverySwitchFromTheSeedLinuxFirst) {
  Write("xen.textproto", "tree: \"xen\"\nfault { id: \"grant-not-in-iommu\" }\n");
  Write("linux.textproto",
        "tree: \"linux\"\ndescribe: \"v6.1\"\n"
        "fault { id: \"cache-flush-local-addr\" boot_rate: 0.3 }\n");
  int taken = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    const BootedRevision rev = BootRevision(dir_, seed);
    const std::vector<BootSwitch>& s = rev.switches;
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].tree, "linux");
    EXPECT_EQ(s[0].id, "cache-flush-local-addr");
    EXPECT_EQ(s[0].taken, sim::FaultTakenThisBoot(seed, "cache-flush-local-addr", 0.3));
    EXPECT_EQ(s[0].ToString(),
              std::string("revision linux (v6.1): cache-flush-local-addr boot_rate 0.3: ") +
                  (s[0].taken ? "taken" : "dormant") + " this boot");
    EXPECT_EQ(s[1].tree, "xen");
    EXPECT_TRUE(s[1].taken) << "no boot_rate: every boot";
    EXPECT_EQ(s[1].ToString(), "revision xen: grant-not-in-iommu boot_rate 1: taken this boot");
    EXPECT_EQ(rev.ConsoleLines(), (std::vector<std::string>{s[0].ToString(), s[1].ToString()}));
    EXPECT_EQ(rev.TakenFaults(), s[0].taken ? (std::vector<std::string>{"cache-flush-local-addr",
                                                                        "grant-not-in-iommu"})
                                            : std::vector<std::string>{"grant-not-in-iommu"});
    taken += s[0].taken ? 1 : 0;
  }
  EXPECT_GT(taken, 0);
  EXPECT_LT(taken, 200);
}

TEST_F(BootRevisionTest, ARevisionWithoutFaultsIsLoggedAndInjectsNothing) {
  Write("xen.textproto", "tree: \"xen\"\ndescribe: \"RELEASE-4.14.0\"\n");
  const BootedRevision rev = BootRevision(dir_, 7);
  ASSERT_EQ(rev.files.size(), 1u);
  EXPECT_TRUE(rev.switches.empty());
  EXPECT_TRUE(rev.TakenFaults().empty());
  EXPECT_EQ(rev.ConsoleLines(),
            std::vector<std::string>{"revision xen (RELEASE-4.14.0): no fault switches"});
}

TEST_F(BootRevisionTest, TheRealCatalogueKnowsWhichTreeAFaultIsIn) {
  Write("linux.textproto", "tree: \"linux\"\nfault {\n  id: \"grant-not-in-iommu\"\n}\n");
  try {
    BootRevision(dir_, 1);
    FAIL() << "a Xen fault in linux.textproto loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("linux.textproto:3:3: fault: grant-not-in-iommu is a "
                                         "xen fault, not linux"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(LookupCatalogueFault("no-such-fault").known);
  EXPECT_EQ(LookupCatalogueFault("cache-flush-local-addr").tree, "linux");
}

}  // namespace
}  // namespace dmahil::agent
