#include "common/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/validate.h"

namespace dmahil {
namespace {

namespace fs = std::filesystem;

// Whether `text` contains `part` (gtest only; no gmock matchers).
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\"\n  does not contain\n\"" << part << "\"";
}

constexpr const char* kBoard = R"(name: "virtual-rpi4"
soc: "bcm2711"
kind: BOARD_KIND_VIRTUAL
ram { name: "low" base: 0x0 size: 0x40000000 }
ram { name: "high" base: 0x100000000 size: 0x40000000 }
cache {
  line_size: 64
  sets: 256
  ways: 4
  eviction_ppm: 1000
}
dma {
  mask_bits: 32
  dma_ranges { bus_base: 0xc0000000 cpu_base: 0x0 size: 0x3c000000 }
}
xen {
  dom0_ram { base: 0x0 size: 0x20000000 }
  domu_ram { base: 0x100000000 size: 0x10000000 }
  domu_gfn_base: 0x40000000
  grant_map_region { base: 0x10000000 size: 0x1000000 }
  swiotlb_pool { base: 0x4000000 size: 0x4000000 }
}
linux_page_size: 4096
)";

constexpr const char* kFixture = R"(name: "grant-from-device"
description: "domU pages granted to dom0, device writes them"
direction: DMA_FROM_DEVICE
source: BUFFER_FOREIGN_GRANT
pages: 16
iterations: 4
canary_pages: 1
)";

constexpr const char* kFarm = R"(name: "nightly"
board {
  name: "rpi4-clean"
  board_file: "../boards/rpi4.textproto"
}
board {
  name: "rpi4-bad"
  board_file: "../boards/rpi4.textproto"
  faults: "bus-addr-no-dma-offset"
  faults: "no-such-fault"
  expect: "wrong-bus-address"
}
fixture_file: "../fixtures/grant.textproto"
seed: 42
)";

// Each test gets its own scratch folder, removed afterwards.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           (std::string("dmahil_config_") + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& rel, const std::string& text) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }

  // The ConfigError message of `fn`, or "" if it did not throw.
  template <class Fn>
  static std::string ErrorOf(Fn&& fn) {
    try {
      fn();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }

  static std::string Replace(std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  }

  fs::path dir_;
};

TEST_F(ConfigTest, ValidBoardFixtureAndFarmLoad) {
  Write("boards/rpi4.textproto", kBoard);
  Write("fixtures/grant.textproto", kFixture);
  // kFarm names an unknown fault on purpose; without it the farm loads.
  const fs::path farm_file =
      Write("farms/nightly.textproto", Replace(kFarm, "  faults: \"no-such-fault\"\n", ""));
  const auto known = [](std::string_view f) { return f == "bus-addr-no-dma-offset"; };
  const LoadedFarm farm = LoadFarm(farm_file, known);
  ASSERT_EQ(farm.boards.size(), 2u);
  ASSERT_EQ(farm.fixtures.size(), 1u);
  EXPECT_EQ(farm.boards[1].entry.name(), "rpi4-bad");
  EXPECT_EQ(farm.boards[1].board.name(), "virtual-rpi4");
  EXPECT_EQ(farm.boards[1].board.ram(1).base(), 0x100000000u);
  EXPECT_EQ(farm.boards[0].file, (dir_ / "boards/rpi4.textproto").lexically_normal());
  EXPECT_EQ(farm.fixtures[0].fixture.iterations(), 4u);
  EXPECT_EQ(farm.farm.seed(), 42u);
}

TEST_F(ConfigTest, RevisionDirResolvedAgainstTheFarmFileAndNotRead) {
  Write("boards/rpi4.textproto", kBoard);
  Write("fixtures/grant.textproto", kFixture);
  const fs::path farm_file =
      Write("farms/nightly.textproto",
            Replace(Replace(kFarm, "  faults: \"no-such-fault\"\n", ""),
                    "  expect:", "  revision_dir: \"../deploy/rev\"\n  expect:"));
  const LoadedFarm farm = LoadFarm(farm_file);  // ../deploy/rev does not exist yet: fine
  ASSERT_EQ(farm.boards.size(), 2u);
  EXPECT_TRUE(farm.boards[0].revision_dir.empty());
  EXPECT_EQ(farm.boards[1].revision_dir, (dir_ / "deploy/rev").lexically_normal());
}

TEST_F(ConfigTest, RevisionDirOnANonVirtualBoardRejected) {
  Write("boards/rpi4.textproto",
        Replace(kBoard, "kind: BOARD_KIND_VIRTUAL", "kind: BOARD_KIND_QEMU_XEN"));
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p = Write("farms/nightly.textproto",
                           Replace(kFarm, "  name: \"rpi4-clean\"\n",
                                   "  name: \"rpi4-clean\"\n  revision_dir: \"rev\"\n"));
  const std::string err = ErrorOf([&] { LoadFarm(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":4:3: board \"rpi4-clean\" has a revision_dir, but only "
                                         "virtual boards read revision files"))
      << err;
}

TEST_F(ConfigTest, TypoInFieldNameNamesFileLineAndField) {
  const fs::path p =
      Write("boards/x.textproto", Replace(kBoard, "  line_size: 64", "  line_sise: 64"));
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":7:3: unknown field \"line_sise\" in "
                                         "dmahil.v1.CacheGeometry; did you mean \"line_size\"?"));
}

TEST_F(ConfigTest, UnknownEnumValueSuggestsValidOne) {
  const fs::path p =
      Write("fixtures/x.textproto", Replace(kFixture, "DMA_FROM_DEVICE", "DMA_FROM_DEVISE"));
  const std::string err = ErrorOf([&] { LoadFixture(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":3:"));
  EXPECT_TRUE(Contains(err, "did you mean DMA_FROM_DEVICE?"));
}

TEST_F(ConfigTest, MissingFileNamesFile) {
  const std::string err = ErrorOf([&] { LoadBoard(dir_ / "nope.textproto"); });
  EXPECT_TRUE(Contains(err, "nope.textproto: cannot read: No such file or directory"));
}

TEST_F(ConfigTest, LineSizeValueErrorNamesLineOfField) {
  const fs::path p = Write("boards/x.textproto", Replace(kBoard, "line_size: 64", "line_size: 48"));
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_EQ(err, p.string() +
                     ":7:3: cache.line_size 48 must be a power of two from 16 to 4096 "
                     "bytes");
}

TEST_F(ConfigTest, OverlappingRamBanksRejected) {
  const fs::path p = Write(
      "boards/x.textproto",
      Replace(kBoard, "base: 0x100000000 size: 0x40000000", "base: 0x3ffff000 size: 0x40000000"));
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":5:1: ram[1] [0x3ffff000, 0x7ffff000) overlaps ram[0] "
                                         "[0x0, 0x40000000)"));
}

TEST_F(ConfigTest, UnreachableSwiotlbPoolRejected) {
  std::string text = Replace(kBoard, "dom0_ram { base: 0x0 size: 0x20000000 }",
                             "dom0_ram { base: 0x120000000 size: 0x20000000 }");
  text =
      Replace(text, "grant_map_region { base: 0x10000000", "grant_map_region { base: 0x130000000");
  text = Replace(text, "swiotlb_pool { base: 0x4000000", "swiotlb_pool { base: 0x124000000");
  text =
      Replace(text, "  dma_ranges { bus_base: 0xc0000000 cpu_base: 0x0 size: 0x3c000000 }\n", "");
  const fs::path p = Write("boards/x.textproto", text);
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":20:3: xen.swiotlb_pool"));
  EXPECT_TRUE(Contains(err, "above the 32-bit DMA mask 0xffffffff"));
}

TEST_F(ConfigTest, Dom0RamSplittingA2MiBSubsectionRejected) {
  const fs::path p =
      Write("boards/x.textproto", Replace(kBoard, "dom0_ram { base: 0x0 size: 0x20000000 }",
                                          "dom0_ram { base: 0x0 size: 0x20001000 }"));
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, "must start and end on 2 MiB (arm64 pfn_valid subsections)")) << err;
  EXPECT_TRUE(Contains(err, p.string() + ":")) << err;
}

TEST_F(ConfigTest, ZeroIterationsRejected) {
  const fs::path p = Write("fixtures/x.textproto", Replace(kFixture, "iterations: 4\n", ""));
  const std::string err = ErrorOf([&] { LoadFixture(p); });
  EXPECT_TRUE(Contains(err, "iterations must be at least 1"));
  EXPECT_TRUE(Contains(err, p.string() + ":1:1:"));
}

TEST_F(ConfigTest, UnknownFaultInFarmNamesItsLine) {
  Write("boards/rpi4.textproto", kBoard);
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p = Write("farms/nightly.textproto", kFarm);
  const std::set<std::string, std::less<>> catalogue = {"bus-addr-no-dma-offset"};
  const auto known = [&](std::string_view f) { return catalogue.count(f) > 0; };
  const std::string err = ErrorOf([&] { LoadFarm(p, known); });
  EXPECT_EQ(err, p.string() + ":10:3: unknown fault \"no-such-fault\" for board \"rpi4-bad\"");
}

TEST_F(ConfigTest, ErrorInBoardFileNamesBoardFileAndFarmLine) {
  Write("boards/rpi4.textproto", Replace(kBoard, "mask_bits: 32", "mask_bits: 20"));
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p = Write("farms/nightly.textproto", kFarm);
  const std::string err = ErrorOf([&] { LoadFarm(p); });
  const std::string board = (dir_ / "boards/rpi4.textproto").lexically_normal().string();
  EXPECT_TRUE(Contains(err, board + ":13:3: dma.mask_bits 20 must be 32..64"));
  EXPECT_TRUE(Contains(err, p.string() + ":4:3: note: board \"rpi4-clean\" uses this board file"));
}

TEST_F(ConfigTest, DuplicateBoardNamesRejected) {
  Write("boards/rpi4.textproto", kBoard);
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p = Write("farms/nightly.textproto",
                           Replace(kFarm, "name: \"rpi4-bad\"", "name: \"rpi4-clean\""));
  const std::string err = ErrorOf([&] { LoadFarm(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":7:3: board name \"rpi4-clean\" is used twice"));
}

TEST_F(ConfigTest, LocateFieldPaths) {
  SourceMap map;
  const fs::path p = Write("boards/rpi4.textproto", kBoard);
  LoadTextProto<v1::Board>(p, &map);
  EXPECT_EQ(map.Locate("ram[1].base").line, 5);
  EXPECT_EQ(map.Locate("ram[1].base").column, 20);
  EXPECT_EQ(map.Locate("cache.line_size").line, 7);
  EXPECT_EQ(map.Locate("xen.swiotlb_pool.size").line, 21);
  EXPECT_EQ(map.Where("cache.line_size"), p.string() + ":7:3");
  // Absent fields resolve to their nearest present ancestor, or to nothing.
  EXPECT_EQ(map.Locate("dma.coherent").line, 12);
  EXPECT_EQ(map.Locate("description").line, 0);
  EXPECT_EQ(map.Where("description"), p.string() + ":1:1");
  EXPECT_THROW(map.Locate("cache.line_sise"), std::invalid_argument);
  EXPECT_THROW(map.Locate("cache[0]"), std::invalid_argument);
}

// Every board, fixture and farm checked into the repository loads.
TEST(ConfigRepository, AllLoad) {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  if (root == nullptr) GTEST_SKIP() << "DMAHIL_SOURCE_DIR not set";
  const auto each = [&](const char* sub, auto&& load) {
    const fs::path dir = fs::path(root) / sub;
    if (!fs::is_directory(dir)) return;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".textproto" && ext != ".txtpb" && ext != ".pbtxt"))
        continue;
      try {
        load(e.path());
      } catch (const ConfigError& err) {
        ADD_FAILURE() << err.what();
      }
    }
  };
  each("boards", [](const fs::path& p) { LoadBoard(p); });
  each("fixtures", [](const fs::path& p) { LoadFixture(p); });
  each("ci/farms", [](const fs::path& p) { LoadFarm(p); });
}

}  // namespace
}  // namespace dmahil
