#include "common/config.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/config_test_support.h"
#include "common/scratch_dir_test_support.h"
#include "common/validate.h"

namespace dmahil {
namespace {

using dmahil::testing::Contains;
using dmahil::testing::kBoard;
using dmahil::testing::kFarm;
using dmahil::testing::kFixture;
using dmahil::testing::kHwBoard;

namespace fs = std::filesystem;

// Each test gets its own scratch folder, removed afterwards.
class ConfigTest : public dmahil::testing::ScratchDirTest {
 protected:
  ConfigTest() : ScratchDirTest("config") {}

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

TEST_F(ConfigTest, UnsetKindListsEveryKindOfTheEnum) {
  const fs::path p = Write("boards/x.textproto", Replace(kBoard, "kind: BOARD_KIND_VIRTUAL\n", ""));
  EXPECT_EQ(ErrorOf([&] { LoadBoard(p); }),
            p.string() +
                ":1:1: board kind is not set; set kind: BOARD_KIND_VIRTUAL, BOARD_KIND_QEMU_XEN "
                "or BOARD_KIND_HARDWARE");
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

TEST_F(ConfigTest, DomURamInAMemorySectionWithDom0RamRejected) {
  // dom0 [0, 512 MiB + 4 KiB): the section [512, 640) MiB holds dom0 RAM, so a domU bank
  // there would be pfn_valid() in dom0 (Linux 6.1 include/linux/mmzone.h).
  std::string text = Replace(kBoard, "dom0_ram { base: 0x0 size: 0x20000000 }",
                             "dom0_ram { base: 0x0 size: 0x20001000 }");
  text = Replace(text, "domu_ram { base: 0x100000000 size: 0x10000000 }",
                 "domu_ram { base: 0x21000000 size: 0x1000000 }");
  const fs::path p = Write("boards/x.textproto", text);
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":18:3: xen.domu_ram[0] [0x21000000, 0x22000000) shares "
                                         "the 128 MiB memory section [0x20000000, 0x28000000) "
                                         "with xen.dom0_ram[0]"))
      << err;
  // The next section is free of dom0 RAM, and dom0 may end anywhere on 4 KiB.
  text = Replace(text, "domu_ram { base: 0x21000000", "domu_ram { base: 0x28000000");
  EXPECT_NO_THROW(LoadBoard(Write("boards/y.textproto", text)));
}

TEST_F(ConfigTest, SectionsAre512MiBWith64KiBPages) {
  // dom0 [0, 640 MiB), domU [768, 784) MiB: apart with 128 MiB sections, together in
  // [512 MiB, 1 GiB) with 512 MiB ones.
  std::string text = Replace(kBoard, "dom0_ram { base: 0x0 size: 0x20000000 }",
                             "dom0_ram { base: 0x0 size: 0x28000000 }");
  text = Replace(text, "domu_ram { base: 0x100000000 size: 0x10000000 }",
                 "domu_ram { base: 0x30000000 size: 0x1000000 }");
  EXPECT_NO_THROW(LoadBoard(Write("boards/a.textproto", text))) << "4 KiB pages: 128 MiB";
  text = Replace(text, "linux_page_size: 4096", "linux_page_size: 65536");
  const std::string err = ErrorOf([&] { LoadBoard(Write("boards/b.textproto", text)); });
  EXPECT_TRUE(Contains(err, "shares the 512 MiB memory section [0x20000000, 0x40000000)")) << err;
}

TEST_F(ConfigTest, ZeroIterationsRejected) {
  const fs::path p = Write("fixtures/x.textproto", Replace(kFixture, "iterations: 4\n", ""));
  const std::string err = ErrorOf([&] { LoadFixture(p); });
  EXPECT_TRUE(Contains(err, "iterations must be at least 1"));
  EXPECT_TRUE(Contains(err, p.string() + ":1:1:"));
}

TEST_F(ConfigTest, PvBlockFixturesRefuseEngineOptionsAndIoOutsideTheBuffer) {
  const fs::path p = Write("fixtures/b.textproto", R"(name: "b"
kind: FIXTURE_KIND_PV_BLOCK
direction: DMA_BIDIRECTIONAL
source: BUFFER_FOREIGN_GRANT
pages: 2
iterations: 1
double_map: true
block { buffer_offset: 1000 bytes: 8192 segments: 65 disk_offset: 7 }
)");
  const std::string err = ErrorOf([&] { LoadFixture(p); });
  EXPECT_TRUE(Contains(err, ":7:1: double_map is not for FIXTURE_KIND_PV_BLOCK")) << err;
  EXPECT_TRUE(Contains(err, ":8:9: block.buffer_offset 1000 must be a multiple of 512")) << err;
  EXPECT_TRUE(Contains(err, "block.bytes 8192 must lie inside the 2 pages")) << err;
  EXPECT_TRUE(Contains(err, "block.segments 65 must be 0..64")) << err;
  EXPECT_TRUE(Contains(err, "block.disk_offset 7 must be a multiple of 512")) << err;
  const fs::path q =
      Write("fixtures/e.textproto", kFixture + std::string("block { bytes: 512 }\n"));
  EXPECT_TRUE(Contains(ErrorOf([&] { LoadFixture(q); }),
                       "block { ... } is for kind: FIXTURE_KIND_PV_BLOCK only"));
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

// ---- Real boards: ports, console, Xen support (the generic rules) ----

TEST_F(ConfigTest, HardwareBoardWithoutXenLayoutLoads) {
  const fs::path p = Write("boards/hw.textproto", kHwBoard);
  const v1::Board board = LoadBoard(p);
  EXPECT_EQ(board.port_size(), 2);
  EXPECT_EQ(board.dma().port(), "pcie0");
  EXPECT_FALSE(board.has_xen());
}

TEST_F(ConfigTest, EnginePortMustBeDeclared) {
  const fs::path p =
      Write("boards/hw.textproto", Replace(kHwBoard, "port: \"pcie0\"", "port: \"pcie1\""));
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_EQ(err, p.string() +
                     ":18:3: dma.port \"pcie1\" names no declared port (declared: acp, "
                     "pcie0)");
}

TEST_F(ConfigTest, EngineMustAgreeWithItsPort) {
  std::string text =
      Replace(kHwBoard, "  mask_bits: 64\n  coherent: false", "  mask_bits: 64\n  coherent: true");
  text = Replace(
      text,
      "  port: \"pcie0\"\n  dma_ranges { bus_base: 0x0 cpu_base: 0x40000000 size: 0x40000000 }",
      "  port: \"pcie0\"\n  dma_ranges { bus_base: 0x0 cpu_base: 0x40000000 size: 0x20000000 }");
  const fs::path p = Write("boards/hw.textproto", text);
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":17:3: dma.coherent is true but the engine's port "
                                         "\"pcie0\" (port[0]) has coherent: false"))
      << err;
  EXPECT_TRUE(Contains(err, p.string() + ":19:3: dma.dma_ranges (bus 0x0 -> cpu 0x40000000 size "
                                         "0x20000000) differ from the dma_ranges of the engine's "
                                         "port \"pcie0\""))
      << err;
}

TEST_F(ConfigTest, PortWindowsMustBeDisjointAndReachRam) {
  std::string text =
      Replace(kHwBoard, "port { name: \"acp\" coherent: true }",
              "port {\n  name: \"acp\"\n  coherent: true\n"
              "  dma_ranges { bus_base: 0x0 cpu_base: 0x0 size: 0x1000000 }\n"
              "  dma_ranges { bus_base: 0x800000 cpu_base: 0x80000000 size: 0x1000 }\n}");
  const fs::path p = Write("boards/hw.textproto", text);
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":17:3: port[1].dma_ranges[0] CPU window [0x0, 0x1000000) "
                                         "reaches no ram bank"))
      << err;
  EXPECT_TRUE(Contains(err, p.string() + ":18:3: port[1].dma_ranges[1] bus window [0x800000, "
                                         "0x801000) overlaps port[1].dma_ranges[0]"))
      << err;
}

TEST_F(ConfigTest, PortNamesUniqueAndAddressBitsInRange) {
  const fs::path p = Write("boards/hw.textproto",
                           Replace(kHwBoard, "port { name: \"acp\" coherent: true }",
                                   "port { name: \"pcie0\" coherent: true address_bits: 20 }"));
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":14:8: port[1].name \"pcie0\" is also the name of "
                                         "port[0]"))
      << err;
  EXPECT_TRUE(Contains(err, "port[1].address_bits 20 must be 0 (not limited) or 32..64")) << err;
}

TEST_F(ConfigTest, ConsoleBaudAndXenVersionsChecked) {
  std::string text = Replace(kHwBoard, "baud: 115200", "baud: 115201");
  text = Replace(text, "since_xen: \"4.17\"", "since_xen: \"4.17.1\" min_dom0_linux: \"five\"");
  const fs::path p = Write("boards/hw.textproto", text);
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":21:25: console.baud 115201 is not a standard serial "
                                         "rate"))
      << err;
  EXPECT_TRUE(Contains(err, "xen_support.since_xen \"4.17.1\" must be MAJOR.MINOR")) << err;
  EXPECT_TRUE(Contains(err, "xen_support.min_dom0_linux \"five\" must be MAJOR.MINOR")) << err;
}

TEST_F(ConfigTest, ATestDiskNamesADom0DeviceItsControllerAndDriver) {
  const fs::path good =
      Write("boards/hw.textproto",
            std::string(kHwBoard) +
                "test_disk { dom0_device: \"/dev/disk/by-partlabel/dmahil-test\"\n"
                "  controller: \"/axi/mmc@ff170000\" driver: \"sdhci-arasan\" }\n");
  EXPECT_EQ(LoadBoard(good).test_disk().driver(), "sdhci-arasan");
  const fs::path p =
      Write("boards/hw.textproto",
            std::string(kHwBoard) + "test_disk { dom0_device: \"mmcblk0p3\" destructive: true }\n");
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  const std::string_view hw(kHwBoard);
  const std::string at =
      p.string() + ":" + std::to_string(std::count(hw.begin(), hw.end(), '\n') + 1) + ":";
  EXPECT_TRUE(Contains(err, at + "13: test_disk.dom0_device \"mmcblk0p3\" must be a path under "
                                 "/dev/ in dom0"))
      << err;
  EXPECT_TRUE(Contains(err, "test_disk.controller is empty")) << err;
  EXPECT_TRUE(Contains(err, "test_disk.driver is empty")) << err;
}

TEST_F(ConfigTest, XenLayoutOnAHardwareBoardIsCheckedIfGiven) {
  const fs::path p =
      Write("boards/hw.textproto",
            std::string(kHwBoard) + "xen { dom0_ram { base: 0x40000000 size: 0x20000000 } }\n");
  const std::string err = ErrorOf([&] { LoadBoard(p); });
  EXPECT_TRUE(Contains(err, "a xen layout needs xen.domu_ram")) << err;
  EXPECT_TRUE(Contains(err, "xen.swiotlb_pool has size 0")) << err;
}

// ---- A kind's rules (BoardRules): common runs them, knowing no kind ----

TEST_F(ConfigTest, KindRulesReportedWithTheGenericProblemsInFileOrder) {
  const fs::path p = Write("boards/hw.textproto", Replace(kHwBoard, "cpus: 4", "cpus: 65"));
  BoardRules rules;
  rules.check_board = [](const v1::Board& board, Problems& problems) {
    if (board.soc() != "the SoC") problems.Add("soc", "soc \"{}\" is not the SoC", board.soc());
  };
  const auto of_kind = [&](int kind) { return kind == v1::BOARD_KIND_HARDWARE ? &rules : nullptr; };
  const std::string err = ErrorOf([&] { LoadBoard(p, nullptr, of_kind); });
  EXPECT_EQ(err, p.string() + ":2:1: soc \"test SoC\" is not the SoC\n" + p.string() +
                     ":8:1: cpus 65 must be 0..64 (CPUs sharing the point of coherency; 0 "
                     "means 1)");
  // Without rules only the generic problem is found.
  EXPECT_EQ(
      ErrorOf([&] { LoadBoard(p); }),
      p.string() + ":8:1: cpus 65 must be 0..64 (CPUs sharing the point of coherency; 0 means 1)");
}

TEST_F(ConfigTest, KindRulesCanRequireTheXenLayout) {
  const fs::path p = Write("boards/hw.textproto", kHwBoard);
  BoardRules rules;
  rules.needs_xen_layout = true;
  rules.noun = "a modelled board";
  const std::string err = ErrorOf([&] { LoadBoard(p, nullptr, [&](int) { return &rules; }); });
  EXPECT_TRUE(Contains(err, p.string() + ":1:1: a modelled board needs xen.dom0_ram")) << err;
  EXPECT_TRUE(Contains(err, "a modelled board needs xen.domu_ram")) << err;
}

TEST_F(ConfigTest, KindFarmEntryRulesSeeEachBoardAndReportInTheFarmFile) {
  Write("boards/rpi4.textproto", kBoard);
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p =
      Write("farms/nightly.textproto", Replace(kFarm, "  faults: \"no-such-fault\"\n", ""));
  BoardRules rules;
  std::vector<std::string> seen;
  rules.check_farm_entry = [&](LoadedBoard& b, FarmBoardContext& ctx) {
    seen.push_back(ctx.Field() + " " + b.board.name());
    EXPECT_EQ(ctx.dir, p.parent_path());
    if (!b.entry.expect().empty())
      ctx.problems.Add(ctx.Field(".expect"), "{} expects \"{}\"", ctx.Field(), b.entry.expect());
    ctx.claims.Claim(ctx.problems, "board file", b.file.string(), ctx.Field(".board_file"));
  };
  const std::string err = ErrorOf([&] { LoadFarm(p, {}, [&](int) { return &rules; }); });
  EXPECT_EQ(seen, (std::vector<std::string>{"board[0] virtual-rpi4", "board[1] virtual-rpi4"}));
  const std::string board = (dir_ / "boards/rpi4.textproto").lexically_normal().string();
  EXPECT_EQ(err, p.string() + ":8:3: board file " + board + " is already used by " +
                     "board[0].board_file at " + p.string() + ":4:3\n" + p.string() +
                     ":10:3: board[1] expects \"wrong-bus-address\"");
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
