#include "common/farm_expectations.h"

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "common/fault_catalogue.h"
#include "common/scratch_dir_test_support.h"

namespace dmahil {
namespace {

/// The registry's answer for the shipped kinds (controller/run/board_kinds.cc): QEMU models
/// no caches.
BoardClass ClassOf(const v1::Board& board) {
  return board.kind() == v1::BOARD_KIND_QEMU_XEN ? BoardClass::kCacheless : BoardClass::kCached;
}

std::filesystem::path Source() {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  return root != nullptr ? root : ".";
}

class FarmExpectations : public testing::ScratchDirTest {
 protected:
  FarmExpectations() : ScratchDirTest("expect") {}

  // A farm beside the shipped files with one board entry `board` (text format).
  LoadedFarm Farm(const std::string& board) {
    const std::string root = Source().string();
    return LoadFarm(
        Write("farm.textproto", "name: \"t\"\nfixture_file: \"" + root +
                                    "/fixtures/foreign-to-device.textproto\"\n" + board),
        [](std::string_view id) { return FindFault(id) != nullptr; });
  }
  std::string Board(const std::string& file) { return (Source() / "boards" / file).string(); }
};

TEST_F(FarmExpectations, TheShippedFaultFarmsAgreeWithTheCatalogue) {
  for (const char* farm : {"ci/farms/virtual.textproto", "ci/farms/qemu-xen-faults.textproto"}) {
    const LoadedFarm f = LoadFarm(Source() / farm);
    EXPECT_EQ(FarmExpectationProblems(f, ClassOf), std::vector<std::string>{}) << farm;
  }
}

TEST_F(FarmExpectations, AnExpectThatIsNoDiagnosisIsAConfigErrorWithItsLine) {
  const LoadedFarm f =
      Farm("board {\n  name: \"z\"\n  board_file: \"" + Board("zcu102-virtual.textproto") +
           "\"\n  faults: \"cache-flush-local-addr\"\n  expect: \"stale-lines\"\n}\n");
  const std::vector<std::string> p = FarmExpectationProblems(f, ClassOf);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("farm.textproto:7:"), std::string::npos) << p[0];
  EXPECT_NE(p[0].find("board[0].expect: \"stale-lines\" is not a diagnosis"), std::string::npos)
      << p[0];
  EXPECT_NE(p[0].find("stale-line, wrong-bus-address"), std::string::npos) << p[0];
  EXPECT_THROW(ValidateFarmExpectations(f, ClassOf), ConfigError);
}

TEST_F(FarmExpectations, AFaultBoardMustExpectTheCatalogueDiagnosisOfItsBoardClass) {
  const LoadedFarm f =
      Farm("board {\n  name: \"z\"\n  board_file: \"" + Board("zcu102-virtual.textproto") +
           "\"\n  faults: \"cache-flush-local-addr\"\n"
           "  expect: \"misaddressed-maintenance\"\n}\n");
  const std::vector<std::string> p = FarmExpectationProblems(f, ClassOf);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("cache-flush-local-addr gives stale-line"), std::string::npos) << p[0];
  EXPECT_NE(p[0].find("a board with caches"), std::string::npos) << p[0];
}

TEST_F(FarmExpectations, AFaultThatCannotManifestOnItsBoardIsAConfigError) {
  const LoadedFarm f =
      Farm("board {\n  name: \"z\"\n  board_file: \"" + Board("zcu102-virtual.textproto") +
           "\"\n  faults: \"bus-addr-no-dma-offset\"\n"
           "  expect: \"wrong-bus-address\"\n}\n");
  const std::vector<std::string> p = FarmExpectationProblems(f, ClassOf);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("bus-addr-no-dma-offset cannot manifest"), std::string::npos) << p[0];
  EXPECT_NE(p[0].find("no dma-ranges offset"), std::string::npos) << p[0];
}

TEST_F(FarmExpectations, AFixtureThatMustFailNamesAFixtureOfTheFarmAndAnIoPath) {
  const LoadedFarm f =
      Farm("board {\n  name: \"z\"\n  board_file: \"" + Board("zcu102-virtual.textproto") +
           "\"\n  expect_fixture { fixture: \"foreign-to-devic\" "
           "io_path: \"reed\" }\n}\n");
  const std::vector<std::string> p = FarmExpectationProblems(f, ClassOf);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_NE(p[0].find("farm.textproto:6:"), std::string::npos) << p[0];
  EXPECT_NE(p[0].find("board[0].expect_fixture[0]: a fixture that must fail needs the board's "
                      "`expect`"),
            std::string::npos)
      << p[0];
  EXPECT_NE(p[1].find("\"foreign-to-devic\" is not a fixture of the farm"), std::string::npos)
      << p[1];
  EXPECT_NE(p[2].find("expect_fixture[0].io_path: \"reed\" is not an I/O path"), std::string::npos)
      << p[2];
  const LoadedFarm ok =
      Farm("board {\n  name: \"z\"\n  board_file: \"" + Board("zcu102-virtual.textproto") +
           "\"\n  faults: \"cache-flush-local-addr\"\n  expect: \"stale-line\"\n"
           "  expect_fixture { fixture: \"foreign-to-device\" io_path: \"read\" }\n}\n");
  EXPECT_EQ(FarmExpectationProblems(ok, ClassOf), std::vector<std::string>{});
}

}  // namespace
}  // namespace dmahil
