#include "common/revision.h"
#include "common/scratch_dir_test_support.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace dmahil {
namespace {

namespace fs = std::filesystem;

// Whether `text` contains `part` (gtest only; no gmock matchers).
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\"\n  does not contain\n\"" << part << "\"";
}

// A small stand-in for the catalogue (common/fault_catalogue.cc): two Linux faults, one Xen fault,
// one catalogued but not modelled.
CatalogueFault FakeCatalogue(std::string_view id) {
  if (id == "cache-flush-local-addr" || id == "bus-addr-no-dma-offset")
    return {true, true, "linux"};
  if (id == "grant-not-in-iommu") return {true, true, "xen"};
  if (id == "not-yet") return {true, false, "linux"};
  return {};
}

class RevisionTest : public dmahil::testing::ScratchDirTest {
 protected:
  RevisionTest() : ScratchDirTest("revision") {}

  // The ConfigError message of loading dir_, or "" if it loaded.
  std::string ErrorOf() const {
    try {
      LoadRevisionDir(dir_, FakeCatalogue);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
};

TEST_F(RevisionTest, GoodFolderLoadsBothTreesLinuxFirst) {
  Write("xen.textproto", "tree: \"xen\"\nfault { id: \"grant-not-in-iommu\" }\n");
  Write("linux.textproto",
        "tree: \"linux\"\ndescribe: \"v6.1-rc3-12-gabc\"\n"
        "fault { id: \"cache-flush-local-addr\" boot_rate: 0.3 }\n"
        "fault { id: \"bus-addr-no-dma-offset\" boot_rate: 1 }\n");
  Write("README", "any other file is ignored");
  const std::vector<LoadedRevision> r = LoadRevisionDir(dir_, FakeCatalogue);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].file, dir_ / "linux.textproto");
  EXPECT_EQ(r[0].revision.describe(), "v6.1-rc3-12-gabc");
  ASSERT_EQ(r[0].revision.fault_size(), 2);
  EXPECT_EQ(r[0].revision.fault(0).id(), "cache-flush-local-addr");
  EXPECT_DOUBLE_EQ(r[0].revision.fault(0).boot_rate(), 0.3);
  EXPECT_EQ(r[1].revision.tree(), "xen");
  EXPECT_EQ(r[1].revision.fault(0).id(), "grant-not-in-iommu");
}

TEST_F(RevisionTest, AbsentFilesAreAllowed) {
  EXPECT_TRUE(LoadRevisionDir(dir_, FakeCatalogue).empty()) << "an empty folder: clean";
  Write("xen.textproto", "tree: \"xen\"\n");
  const std::vector<LoadedRevision> r = LoadRevisionDir(dir_, FakeCatalogue);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].revision.tree(), "xen");
  EXPECT_EQ(r[0].revision.fault_size(), 0);
}

TEST_F(RevisionTest, MissingFolderAsksWhetherTheDeployHookRan) {
  fs::remove_all(dir_);
  EXPECT_EQ(ErrorOf(),
            "revision folder " + dir_.string() + " does not exist: did the deploy hook run?");
}

TEST_F(RevisionTest, AFileIsNotAFolder) {
  const fs::path file = Write("linux.textproto", "tree: \"linux\"\n");
  EXPECT_THROW(LoadRevisionDir(file, FakeCatalogue), ConfigError);
}

TEST_F(RevisionTest, TreeMustMatchTheFileName) {
  const fs::path p = Write("linux.textproto", "describe: \"x\"\ntree: \"xen\"\n");
  EXPECT_TRUE(Contains(ErrorOf(), p.string() + ":2:1: tree \"xen\" does not match the file name "
                                               "linux.textproto"));
  Write("linux.textproto", "describe: \"x\"\n");
  EXPECT_TRUE(Contains(ErrorOf(), "tree is not set; set tree: \"linux\""));
}

TEST_F(RevisionTest, XenFaultInLinuxFileNamesFileLineAndColumn) {
  const fs::path p = Write("linux.textproto",
                           "tree: \"linux\"\n"
                           "fault { id: \"cache-flush-local-addr\" }\n"
                           "fault {\n"
                           "  id: \"grant-not-in-iommu\"\n"
                           "}\n");
  EXPECT_TRUE(Contains(ErrorOf(), p.string() + ":4:3: fault: grant-not-in-iommu is a xen fault, "
                                               "not linux; it belongs in xen.textproto"));
}

TEST_F(RevisionTest, BootRateOutsideZeroToOneRejected) {
  const fs::path p =
      Write("linux.textproto",
            "tree: \"linux\"\nfault {\n  id: \"cache-flush-local-addr\"\n  boot_rate: 1.5\n}\n");
  EXPECT_TRUE(Contains(ErrorOf(), p.string() + ":4:3: fault: cache-flush-local-addr boot_rate "
                                               "1.5 must be in (0, 1]"));
  Write("linux.textproto",
        "tree: \"linux\"\nfault { id: \"cache-flush-local-addr\" boot_rate: -0.1 }\n");
  EXPECT_TRUE(Contains(ErrorOf(), "boot_rate -0.1 must be in (0, 1]"));
  Write("linux.textproto",
        "tree: \"linux\"\nfault { id: \"cache-flush-local-addr\" boot_rate: nan }\n");
  EXPECT_TRUE(Contains(ErrorOf(), "must be in (0, 1]"));
  // 0 would read as "off" but a switch is on: refused, with how to say either.
  Write("linux.textproto",
        "tree: \"linux\"\nfault { id: \"cache-flush-local-addr\" boot_rate: 0 }\n");
  EXPECT_TRUE(Contains(ErrorOf(), "remove the switch for none"));
}

TEST_F(RevisionTest, UnknownAndUnmodelledFaultsRejected) {
  const fs::path p = Write("linux.textproto",
                           "tree: \"linux\"\nfault { id: \"no-such-fault\" }\n"
                           "fault { id: \"not-yet\" }\nfault { boot_rate: 0.5 }\n");
  const std::string err = ErrorOf();
  EXPECT_TRUE(Contains(err, p.string() + ":2:9: fault: unknown fault \"no-such-fault\""));
  EXPECT_TRUE(Contains(err, p.string() + ":3:9: fault: not-yet is catalogued but not modelled"));
  EXPECT_TRUE(Contains(err, p.string() + ":4:1: fault: fault[2] has no id"));
}

TEST_F(RevisionTest, DuplicateIdRejectedNamingBothLines) {
  const fs::path p = Write("xen.textproto",
                           "tree: \"xen\"\nfault { id: \"grant-not-in-iommu\" }\n"
                           "fault { id: \"grant-not-in-iommu\" boot_rate: 0.5 }\n");
  EXPECT_EQ(ErrorOf(), p.string() + ":3:9: fault: grant-not-in-iommu is listed twice (also at " +
                           p.string() + ":2:9)");
}

TEST_F(RevisionTest, ErrorsOfBothFilesAndSyntaxErrorsAreReported) {
  const fs::path linux = Write("linux.textproto", "tree: \"linux\"\nfalut { id: \"x\" }\n");
  const fs::path xen = Write("xen.textproto", "tree: \"linux\"\n");
  const std::string err = ErrorOf();
  EXPECT_TRUE(Contains(err, linux.string() + ":2:1: unknown field \"falut\""));
  EXPECT_TRUE(Contains(err, xen.string() + ":1:1: tree \"linux\" does not match"));
}

}  // namespace
}  // namespace dmahil
