// What the board kinds of the registry (board_kind.h, kinds/) need of their board files
// and farm entries, through LoadBoardWithKind and LoadFarmWithKinds: the hardware board's
// description, which kinds take faults, revision_dir and wiring, and the wiring itself,
// checked by the validators next to each backend (controller/lab/*, controller/device/
// usb_device_client.h). Every error names the file, line and field.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/config_test_support.h"
#include "common/scratch_dir_test_support.h"
#include "common/validate.h"
#include "controller/run/board_kind.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::controller {
namespace {

using dmahil::testing::Contains;
using dmahil::testing::kBoard;
using dmahil::testing::kFarm;
using dmahil::testing::kFixture;
using dmahil::testing::kHwBoard;

namespace fs = std::filesystem;

// Each test gets its own scratch folder, removed afterwards.
class FarmWiringTest : public dmahil::testing::ScratchDirTest {
 protected:
  FarmWiringTest() : ScratchDirTest("farm_wiring") {}

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

// ---- Virtual boards: the model's needs and what only they take ----

TEST_F(FarmWiringTest, VirtualBoardNeedsTheXenLayoutOnlyThroughItsKind) {
  const std::string text =
      std::string(kBoard).substr(0, std::string(kBoard).find("xen {")) + "linux_page_size: 4096\n";
  const fs::path p = Write("boards/x.textproto", text);
  const std::string err = ErrorOf([&] { LoadBoardWithKind(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":1:1: a virtual board needs xen.dom0_ram")) << err;
  EXPECT_TRUE(Contains(err, "a virtual board needs xen.domu_ram")) << err;
  EXPECT_TRUE(Contains(err, "xen.swiotlb_pool has size 0")) << err;
  // The rule is the kind's: common's generic loader alone accepts the board.
  EXPECT_EQ(ErrorOf([&] { LoadBoard(p); }), "");
}

TEST_F(FarmWiringTest, VirtualBoardNeedsOneLineSizeInEveryCacheLevel) {
  const fs::path p =
      Write("boards/x.textproto",
            Replace(kBoard, "linux_page_size: 4096",
                    "l1 { line_size: 32 sets: 128 ways: 4 }\nlinux_page_size: 4096"));
  const std::string err = ErrorOf([&] { LoadBoardWithKind(p); });
  EXPECT_TRUE(Contains(err, p.string() +
                                ":23:6: l1.line_size 32 differs from cache.line_size 64; the "
                                "virtual board needs the same line size in every cache level"))
      << err;
  EXPECT_EQ(ErrorOf([&] { LoadBoard(p); }), "");
}

TEST_F(FarmWiringTest, FaultsOnlyForKindsThatRunTheModel) {
  Write("boards/rpi4.textproto",
        Replace(kBoard, "kind: BOARD_KIND_VIRTUAL", "kind: BOARD_KIND_QEMU_XEN"));
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p =
      Write("farms/nightly.textproto", Replace(kFarm, "  faults: \"no-such-fault\"\n", ""));
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  EXPECT_TRUE(Contains(err, p.string() +
                                ":9:3: board \"rpi4-bad\" has faults, but faults can only be "
                                "injected into virtual boards (" +
                                (dir_ / "boards/rpi4.textproto").lexically_normal().string() +
                                " is not BOARD_KIND_VIRTUAL)"))
      << err;
}

TEST_F(FarmWiringTest, KindNamesListsTheKindsARuleAllows) {
  EXPECT_EQ(KindNames([](const BoardKindTraits& t) { return t.runs_model; }, "or"),
            "BOARD_KIND_VIRTUAL");
  EXPECT_EQ(
      KindNames([](const BoardKindTraits& t) { return t.wiring != BoardKindTraits::Wiring::kNone; },
                "and"),
      "BOARD_KIND_HARDWARE and BOARD_KIND_QEMU_XEN");
  EXPECT_EQ(KindNames([](const BoardKindTraits&) { return true; }, "or"),
            "BOARD_KIND_HARDWARE, BOARD_KIND_QEMU_XEN or BOARD_KIND_VIRTUAL");
}

TEST_F(FarmWiringTest, RevisionDirOnANonVirtualBoardRejected) {
  Write("boards/rpi4.textproto",
        Replace(kBoard, "kind: BOARD_KIND_VIRTUAL", "kind: BOARD_KIND_QEMU_XEN"));
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p = Write("farms/nightly.textproto",
                           Replace(kFarm, "  name: \"rpi4-clean\"\n",
                                   "  name: \"rpi4-clean\"\n  revision_dir: \"rev\"\n"));
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":4:3: board \"rpi4-clean\" has a revision_dir, but only "
                                         "virtual boards read revision files"))
      << err;
}

TEST_F(FarmWiringTest, HardwareBoardNeedsPortsConsoleXenSupportL1AndCpus) {
  std::string text = kHwBoard;
  text = Replace(text, "l1 { line_size: 64 sets: 128 ways: 4 }\ncpus: 4\n", "");
  text = Replace(text, "console { uart: \"UART0\" baud: 115200 }\n", "");
  text = Replace(text, "xen_support { status: XEN_SUPPORT_UPSTREAM since_xen: \"4.17\" }\n", "");
  text = Replace(text, "  port: \"pcie0\"\n", "");
  const fs::path p = Write("boards/hw.textproto", text);
  const std::string err = ErrorOf([&] { LoadBoardWithKind(p); });
  EXPECT_TRUE(Contains(err, "a hardware board needs dma.port")) << err;
  EXPECT_TRUE(Contains(err, "a hardware board needs console")) << err;
  EXPECT_TRUE(Contains(err, "a hardware board needs xen_support")) << err;
  EXPECT_TRUE(Contains(err, "a hardware board needs l1")) << err;
  EXPECT_TRUE(Contains(err, "a hardware board needs cpus")) << err;
  // dma.port is absent: the error points at the dma block (line 13).
  EXPECT_TRUE(Contains(err, p.string() + ":13:1: a hardware board needs dma.port")) << err;

  const fs::path q = Write("boards/noport.textproto",
                           Replace(Replace(kHwBoard, "port { name: \"acp\" coherent: true }\n", ""),
                                   "port {\n  name: \"pcie0\"\n  coherent: false\n  dma_ranges { "
                                   "bus_base: 0x0 cpu_base: 0x40000000 size: 0x40000000 }\n}\n",
                                   ""));
  const std::string err2 = ErrorOf([&] { LoadBoardWithKind(q); });
  EXPECT_TRUE(Contains(err2, "a hardware board needs at least one port")) << err2;
  EXPECT_TRUE(Contains(err2, "dma.port \"pcie0\" names no declared port (declared: none")) << err2;
}

// ---- Lab wiring in farm files (controller/lab validators, controller/device/usb_*) ----

constexpr const char* kHwFarm = R"(name: "lab"
fixture_file: "../fixtures/grant.textproto"
board {
  name: "a"
  board_file: "../boards/hw.textproto"
  wiring {
    power { gpio { power { chip: "gpiochip0" offset: 17 active_low: true } } }
    console { device: "/dev/ttyUSB0" baud: 115200 agent_ready: "dom0 ready" }
    engine { vid: 0x0403 pid: 0x601f serial: "A" ep_out: 0x02 ep_in: 0x82 }
    dom0_agent: "192.0.2.1:50051"
    guest_agent: "[2001:db8::1]:50051"
    health_fixture: "../fixtures/grant.textproto"
  }
}
board {
  name: "b"
  board_file: "../boards/hw.textproto"
  wiring {
    power { pdu { url: "http://127.0.0.1:16421" hostname: "pdu" port: 2 } }
    console { device: "/dev/ttyUSB1" baud: 115200 }
    engine { vid: 0x0403 pid: 0x601f serial: "B" ep_out: 0x01 ep_in: 0x81 }
    dom0_agent: "192.0.2.2:50051"
    guest_agent: "192.0.2.3:50051"
  }
}
)";

TEST_F(FarmWiringTest, WiredHardwareFarmLoads) {
  Write("boards/hw.textproto", kHwBoard);
  Write("fixtures/grant.textproto", kFixture);
  const LoadedFarm farm = LoadFarmWithKinds(Write("farms/lab.textproto", kHwFarm));
  ASSERT_EQ(farm.boards.size(), 2u);
  EXPECT_EQ(farm.boards[0].entry.wiring().engine().serial(), "A");
  EXPECT_TRUE(farm.boards[1].entry.wiring().power().has_pdu());
}

TEST_F(FarmWiringTest, WiringOnAVirtualBoardAndMissingWiringRejected) {
  Write("boards/hw.textproto", kHwBoard);
  Write("boards/rpi4.textproto", kBoard);
  Write("fixtures/grant.textproto", kFixture);
  std::string text =
      Replace(kHwFarm, "board_file: \"../boards/hw.textproto\"\n  wiring {\n    power { gpio",
              "board_file: \"../boards/rpi4.textproto\"\n  wiring {\n    power { gpio");
  text += "board { name: \"c\" board_file: \"../boards/hw.textproto\" }\n";
  const fs::path p = Write("farms/lab.textproto", text);
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  EXPECT_TRUE(Contains(err, p.string() + ":6:3: board \"a\" has wiring, but only "
                                         "BOARD_KIND_HARDWARE and BOARD_KIND_QEMU_XEN boards "
                                         "are wired"))
      << err;
  EXPECT_TRUE(Contains(err, p.string() + ":26:1: board \"c\" is BOARD_KIND_HARDWARE")) << err;
  EXPECT_TRUE(Contains(err, "needs wiring { power console engine dom0_agent guest_agent }")) << err;
}

TEST_F(FarmWiringTest, WiringFieldsCheckedWithFarmLines) {
  Write("boards/hw.textproto", kHwBoard);
  Write("fixtures/grant.textproto", kFixture);
  std::string text = kHwFarm;
  text = Replace(text, "baud: 115200 agent_ready: \"dom0 ready\"",
                 "baud: 57600 agent_ready: \"dom0 (ready\"");
  text = Replace(text, "vid: 0x0403 pid: 0x601f serial: \"A\" ep_out: 0x02 ep_in: 0x82",
                 "vid: 0 pid: 0x601f serial: \"A\" ep_out: 0x82 ep_in: 0x02");
  text = Replace(text, "dom0_agent: \"192.0.2.1:50051\"", "dom0_agent: \"192.0.2.1\"");
  text = Replace(text, "guest_agent: \"[2001:db8::1]:50051\"", "guest_agent: \"host:70000\"");
  text = Replace(text, "health_fixture: \"../fixtures/grant.textproto\"",
                 "health_fixture: \"../fixtures/none.textproto\"");
  text =
      Replace(text, "power { pdu { url: \"http://127.0.0.1:16421\" hostname: \"pdu\" port: 2 } }",
              "power { }");
  const fs::path p = Write("farms/lab.textproto", text);
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  const std::string f = p.string();
  EXPECT_TRUE(Contains(err, f + ":8:38: board[0].wiring.console.baud 57600 differs from the "
                                "board's console.baud 115200"))
      << err;
  EXPECT_TRUE(Contains(err, f + ":8:50: board[0].wiring.console.agent_ready \"dom0 (ready\" is "
                                "not an ECMAScript regex"))
      << err;
  EXPECT_TRUE(Contains(err, f + ":9:14: board[0].wiring.engine.vid 0x0000 must be a nonzero"))
      << err;
  EXPECT_TRUE(Contains(err,
                       "board[0].wiring.engine.ep_out 0x82 is an IN address; an OUT endpoint "
                       "has bit 0x80 clear (e.g. 0x02)"))
      << err;
  EXPECT_TRUE(Contains(err, "board[0].wiring.engine.ep_in 0x02 is an OUT address")) << err;
  EXPECT_TRUE(Contains(err, f + ":10:5: board[0].wiring.dom0_agent \"192.0.2.1\" has no :port"))
      << err;
  EXPECT_TRUE(Contains(err,
                       "board[0].wiring.guest_agent \"host:70000\" has a port outside "
                       "1..65535"))
      << err;
  EXPECT_TRUE(Contains(err, "none.textproto: cannot read")) << err;
  EXPECT_TRUE(Contains(err, f + ":12:5: note: board \"a\" names this health fixture")) << err;
  EXPECT_TRUE(Contains(err, f + ":19:5: board[1].wiring.power has no backend")) << err;
}

TEST_F(FarmWiringTest, TwoBoardsCannotShareARelayUartEngineOrAgent) {
  Write("boards/hw.textproto", kHwBoard);
  Write("fixtures/grant.textproto", kFixture);
  std::string text = kHwFarm;
  text =
      Replace(text, "power { pdu { url: \"http://127.0.0.1:16421\" hostname: \"pdu\" port: 2 } }",
              "power { gpio { power { chip: \"gpiochip0\" offset: 17 } } }");
  text = Replace(text, "device: \"/dev/ttyUSB1\"", "device: \"/dev/ttyUSB0\"");
  text = Replace(text, "serial: \"B\"", "serial: \"A\"");
  text = Replace(text, "dom0_agent: \"192.0.2.2:50051\"", "dom0_agent: \"192.0.2.1:50051\"");
  const fs::path p = Write("farms/lab.textproto", text);
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  const std::string f = p.string();
  EXPECT_TRUE(Contains(err, f +
                                ":19:20: GPIO line gpiochip0:17 is already used by "
                                "board[0].wiring.power.gpio.power at " +
                                f + ":7:20"))
      << err;
  EXPECT_TRUE(Contains(err,
                       "serial device /dev/ttyUSB0 is already used by "
                       "board[0].wiring.console.device"))
      << err;
  EXPECT_TRUE(Contains(err,
                       "USB engine 0403:601f serial A is already used by "
                       "board[0].wiring.engine.serial"))
      << err;
  EXPECT_TRUE(Contains(err,
                       "agent endpoint 192.0.2.1:50051 is already used by "
                       "board[0].wiring.dom0_agent"))
      << err;
}

// ---- The qemu-xen board's wiring (controller/lab/qemu_power.h ValidateQemuWiring) ----

constexpr const char* kQemuBoard = R"(name: "qemu"
kind: BOARD_KIND_QEMU_XEN
ram { name: "ram" base: 0x40000000 size: 0x80000000 }
cache { line_size: 64 sets: 1024 ways: 16 }
dma { mask_bits: 64 coherent: true }
linux_page_size: 4096
)";

constexpr const char* kQemuFarm = R"(name: "qemu"
fixture_file: "../fixtures/grant.textproto"
board {
  name: "q"
  board_file: "../boards/qemu.textproto"
  wiring {
    power { qemu { fetch_env: "../build-qemu/cache/fetch.env" initrd: "../build-qemu/board.cpio.gz" dom0_agent_port: 17000 guest_agent_port: 17001 engine_port: 17002 } }
    console { agent_ready: "dmahil-qemu: board ready" }
    engine_tcp: "127.0.0.1:17002"
    dom0_agent: "127.0.0.1:17000"
    guest_agent: "127.0.0.1:17001"
    boot_timeout_ms: 180000
  }
}
)";

TEST_F(FarmWiringTest, QemuFarmLoadsWithPathsResolvedAgainstTheFarmFolder) {
  Write("boards/qemu.textproto", kQemuBoard);
  Write("fixtures/grant.textproto", kFixture);
  const fs::path p = Write("farms/qemu.textproto", kQemuFarm);
  const LoadedFarm farm = LoadFarmWithKinds(p);
  ASSERT_EQ(farm.boards.size(), 1u);
  const v1::QemuPower& q = farm.boards[0].entry.wiring().power().qemu();
  const fs::path root = p.parent_path().parent_path();
  EXPECT_EQ(q.fetch_env(), (root / "build-qemu/cache/fetch.env").string());
  EXPECT_EQ(q.initrd(), (root / "build-qemu/board.cpio.gz").string());
  EXPECT_EQ(q.qemu(), "");  // a bare name (or none) stays for PATH
  EXPECT_EQ(farm.boards[0].entry.wiring().engine_tcp(), "127.0.0.1:17002");
}

TEST_F(FarmWiringTest, QemuBoardsNeedQemuPowerAndOnlyThey) {
  Write("boards/qemu.textproto", kQemuBoard);
  Write("boards/hw.textproto", kHwBoard);
  Write("fixtures/grant.textproto", kFixture);
  // A qemu board with a relay and a USB engine; a hardware board with QEMU and engine_tcp.
  std::string text =
      Replace(kQemuFarm,
              "power { qemu { fetch_env: \"../build-qemu/cache/fetch.env\" initrd: "
              "\"../build-qemu/board.cpio.gz\" dom0_agent_port: 17000 guest_agent_port: 17001 "
              "engine_port: 17002 } }",
              "power { gpio { power { chip: \"gpiochip0\" offset: 1 } } }");
  text = Replace(text, "engine_tcp: \"127.0.0.1:17002\"",
                 "engine { vid: 0x0403 pid: 0x601f ep_out: 0x02 ep_in: 0x82 }");
  text += R"(board {
  name: "h"
  board_file: "../boards/hw.textproto"
  wiring {
    power { qemu { initrd: "x" } }
    console { device: "/dev/ttyUSB0" baud: 115200 }
    engine_tcp: "127.0.0.1:1"
    dom0_agent: "192.0.2.1:1"
    guest_agent: "192.0.2.1:2"
  }
}
board { name: "n" board_file: "../boards/qemu.textproto" }
)";
  const fs::path p = Write("farms/qemu.textproto", text);
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  const std::string f = p.string();
  EXPECT_TRUE(Contains(err, f + ":7:5: board[0].wiring.power must be qemu { ... }: a "
                                "BOARD_KIND_QEMU_XEN board's power is its QEMU process"))
      << err;
  EXPECT_TRUE(Contains(err, f + ":9:5: board[0].wiring.engine (USB) cannot drive a "
                                "BOARD_KIND_QEMU_XEN board"))
      << err;
  EXPECT_TRUE(Contains(err, f + ":19:13: board[1].wiring.power.qemu is only for "
                                "BOARD_KIND_QEMU_XEN boards (this board is BOARD_KIND_HARDWARE)"))
      << err;
  EXPECT_TRUE(Contains(err, f + ":21:5: board[1].wiring.engine_tcp is only for "
                                "BOARD_KIND_QEMU_XEN boards"))
      << err;
  EXPECT_TRUE(Contains(err, f + ":26:1: board \"n\" is BOARD_KIND_QEMU_XEN (")) << err;
  EXPECT_TRUE(Contains(err, "needs wiring { power console engine_tcp dom0_agent guest_agent }"))
      << err;
}

TEST_F(FarmWiringTest, QemuPowerFieldsAndForwardedPortsChecked) {
  Write("boards/qemu.textproto", kQemuBoard);
  Write("fixtures/grant.textproto", kFixture);
  std::string text =
      Replace(kQemuFarm,
              "power { qemu { fetch_env: \"../build-qemu/cache/fetch.env\" initrd: "
              "\"../build-qemu/board.cpio.gz\" dom0_agent_port: 17000 guest_agent_port: 17001 "
              "engine_port: 17002 } }",
              "power { qemu { memory_mib: 600 dom0_mem_mib: 512 cpus: 9 edu_dma_mask: 0xff00 "
              "nvme_disk_mib: 70000\n"
              "      dom0_agent_port: 17000 guest_agent_port: 70000 engine_port: 17003 } }");
  text = Replace(text, "console { agent_ready: \"dmahil-qemu: board ready\" }",
                 "console { device: \"/dev/ttyUSB0\" }");
  text = Replace(text, "dom0_agent: \"127.0.0.1:17000\"", "dom0_agent: \"localhost:17000\"");
  // A second qemu board forwarding a port the first already uses.
  text += R"(board {
  name: "q2"
  board_file: "../boards/qemu.textproto"
  wiring {
    power { qemu { xen: "x" kernel: "k" initrd: "i" dom0_agent_port: 17000 guest_agent_port: 17011 engine_port: 17012 nvme_side_through_dom0: true } }
    console { agent_ready: "ready" }
    engine_tcp: "127.0.0.1:17012"
    dom0_agent: "127.0.0.2:17000"
    guest_agent: "127.0.0.1:17011"
  }
}
)";
  const fs::path p = Write("farms/qemu.textproto", text);
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  const std::string f = p.string();
  for (const std::string& want : std::vector<std::string>{
           f + ":7:13: board[0].wiring.power.qemu.initrd is empty",
           "board[0].wiring.power.qemu.xen is empty and there is no fetch_env",
           "board[0].wiring.power.qemu.kernel is empty and there is no fetch_env",
           f + ":7:36: board[0].wiring.power.qemu.dom0_mem_mib 512 leaves less than 128 MiB "
               "of memory_mib 600",
           f + ":7:54: board[0].wiring.power.qemu.cpus 9 must be 0 (2) or 1..8",
           f + ":7:62: board[0].wiring.power.qemu.edu_dma_mask 0xff00 must be 0 (64 bits) or "
               "2^n - 1",
           f + ":7:83: board[0].wiring.power.qemu.nvme_disk_mib 70000 must be 0 (no NVMe "
               "disk) or 1..65536 MiB",
           f + ":8:30: board[0].wiring.power.qemu.guest_agent_port 70000 must be a host TCP "
               "port 1..65535",
           f + ":9:15: board[0].wiring.console.device \"/dev/ttyUSB0\" must be empty for power "
               "{ qemu }",
           f + ":9:5: board[0].wiring.console needs agent_ready",
           f + ":10:5: board[0].wiring.engine_tcp \"127.0.0.1:17002\" must be "
               "\"127.0.0.1:17003\" (QEMU forwards that host port into dom0)",
           f + ":11:5: board[0].wiring.dom0_agent \"localhost:17000\" must be "
               "\"127.0.0.1:17000\"",
           f +
               ":20:53: host TCP port 127.0.0.1:17000 is already used by "
               "board[0].wiring.power.qemu.dom0_agent_port at " +
               f + ":8:7",
           f + ":23:5: board[1].wiring.dom0_agent \"127.0.0.2:17000\" must be "
               "\"127.0.0.1:17000\"",
           f + ":20:119: board[1].wiring.power.qemu.nvme_side_through_dom0 needs an NVMe disk: "
               "set nvme_disk_mib"})
    EXPECT_TRUE(Contains(err, want)) << err;
}

TEST_F(FarmWiringTest, QemuPowerMustBootTheMachineTheBoardFileDescribes) {
  // The oracle judges by the board file: coherency, the edu mask and the RAM must be the
  // machine QEMU runs, or the maintenance audit and the bounce checks judge another one.
  Write("boards/qemu.textproto", kQemuBoard);
  Write("fixtures/grant.textproto", kFixture);
  const std::string text = Replace(
      kQemuFarm, "dom0_agent_port: 17000",
      "non_coherent: true memory_mib: 4096 edu_dma_mask: 0xffffffff dom0_agent_port: 17000");
  const fs::path p = Write("farms/qemu.textproto", text);
  const std::string err = ErrorOf([&] { LoadFarmWithKinds(p); });
  EXPECT_TRUE(Contains(err,
                       "board[0].wiring.power.qemu.non_coherent is true but board \"qemu\" "
                       "says dma.coherent true"))
      << err;
  EXPECT_TRUE(Contains(err,
                       "board[0].wiring.power.qemu.edu_dma_mask 0xffffffff is 32 bits but "
                       "board \"qemu\" says dma.mask_bits 64"))
      << err;
  EXPECT_TRUE(Contains(err,
                       "board[0].wiring.power.qemu.memory_mib 4096 but board \"qemu\" has "
                       "2048 MiB of RAM"))
      << err;
  EXPECT_TRUE(Contains(err, p.string() + ":7:")) << err;  // the farm file's line
}

// Every board and farm checked into the repository loads with its kind's rules.
TEST(FarmWiringRepository, AllLoadWithTheirKinds) {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  if (root == nullptr) GTEST_SKIP() << "DMAHIL_SOURCE_DIR not set";
  const auto each = [&](const char* sub, auto&& load) {
    const fs::path dir = fs::path(root) / sub;
    ASSERT_TRUE(fs::is_directory(dir)) << dir;
    int loaded = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      const std::string ext = e.path().extension().string();
      if (!e.is_regular_file() || (ext != ".textproto" && ext != ".txtpb" && ext != ".pbtxt"))
        continue;
      try {
        load(e.path());
        ++loaded;
      } catch (const ConfigError& err) {
        ADD_FAILURE() << err.what();
      }
    }
    EXPECT_GT(loaded, 0) << dir;
  };
  each("boards", [](const fs::path& p) { LoadBoardWithKind(p); });
  each("ci/farms", [](const fs::path& p) { LoadFarmWithKinds(p); });
}

}  // namespace
}  // namespace dmahil::controller
