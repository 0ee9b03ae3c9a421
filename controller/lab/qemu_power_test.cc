// QemuPowerSwitch against a stand-in QEMU (testdata/fake-qemu.sh): the command line, the
// console on the controller's pty, the process group killed at power off, the DTB edit of
// the non-coherent variant (real dtc/fdtput from device-tree-compiler), and a QEMU that
// exits on its own.
#include "controller/lab/qemu_power.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controller/lab/lab_error.h"

namespace dmahil::lab {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The argument lists the fake recorded, one per run.
std::vector<std::vector<std::string>> Runs(const fs::path& args_file) {
  std::vector<std::vector<std::string>> runs(1);
  std::ifstream in(args_file);
  for (std::string line; std::getline(in, line);) {
    if (line == "--")
      runs.emplace_back();
    else
      runs.back().push_back(line);
  }
  runs.pop_back();
  return runs;
}

// Running (a zombie is not: an orphan waits there for a reaper that may be slow to come).
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const size_t paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// Waits up to 5 s for `pid` to be gone (a killed process is reaped by its parent: the
// fake's child by init once the fake is gone).
bool GoneSoon(pid_t pid) {
  for (int i = 0; i < 250 && Alive(pid); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return !Alive(pid);
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const LabError& e) {
    return e.what();
  }
  return "(no LabError)";
}

class QemuPowerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dmahil-qemu-power-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "images");
    for (const char* f : {"xen-4.17-arm64", "vmlinuz-6.1.0-99-arm64", "board.cpio.gz"})
      std::ofstream(dir_ / "images" / f) << "image\n";
    std::ofstream(dir_ / "images/fetch.env")
        << "# written by qemu/fetch.sh\nABI=6.1.0-99-arm64\nXEN="
        << (dir_ / "images/xen-4.17-arm64").string()
        << "\nKERNEL=" << (dir_ / "images/vmlinuz-6.1.0-99-arm64").string() << "\n";
    ::setenv("FAKE_QEMU_DIR", dir_.c_str(), 1);
    power_.set_qemu(
        (fs::path(std::getenv("DMAHIL_SOURCE_DIR")) / "controller/lab/testdata/fake-qemu.sh")
            .string());
    power_.set_fetch_env((dir_ / "images/fetch.env").string());
    power_.set_initrd((dir_ / "images/board.cpio.gz").string());
    power_.set_dom0_agent_port(17000);
    power_.set_guest_agent_port(17001);
    power_.set_engine_port(17002);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  void Mode(const std::string& mode) { std::ofstream(dir_ / "mode") << mode << "\n"; }
  std::vector<pid_t> Pids() {
    std::vector<pid_t> pids;
    std::ifstream in(dir_ / "pids");
    for (pid_t p; in >> p;) pids.push_back(p);
    return pids;
  }

  fs::path dir_;
  v1::QemuPower power_;
  v1::SerialConsole console_config_ = [] {
    v1::SerialConsole c;
    c.set_agent_ready("dmahil-qemu: board ready");
    return c;
  }();
};

TEST_F(QemuPowerTest, TheCommandLineIsTheVerifiedOne) {
  const QemuImages images = ResolveQemuImages(power_);
  EXPECT_EQ(images.xen, dir_ / "images/xen-4.17-arm64");  // from fetch.env's XEN=
  EXPECT_EQ(images.kernel, dir_ / "images/vmlinuz-6.1.0-99-arm64");
  const std::vector<std::string> args = QemuArgs(power_, images, "/dev/pts/77");
  const std::string k = images.kernel.string();
  const std::vector<std::string> want = {
      "-machine",
      "virt,virtualization=on,gic-version=3",
      "-cpu",
      "cortex-a57",
      "-smp",
      "2",
      "-m",
      "2048",
      "-display",
      "none",
      "-no-reboot",
      "-serial",
      "/dev/pts/77",
      "-monitor",
      "none",
      "-parallel",
      "none",
      "-kernel",
      images.xen.string(),
      "-append",
      "dom0_mem=512M,max:512M console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all",
      "-device",
      "guest-loader,addr=0x49000000,kernel=" + k +
          ",bootargs=console=hvc0 earlycon=xenboot rdinit=/init pci=nomsi dmahil.dma_bits=64",
      "-device",
      "guest-loader,addr=0x4d000000,initrd=" + images.initrd.string(),
      "-netdev",
      "user,id=n0,hostfwd=tcp:127.0.0.1:17000-10.0.2.15:7000,"
      "hostfwd=tcp:127.0.0.1:17001-10.0.2.15:7001,hostfwd=tcp:127.0.0.1:17002-10.0.2.15:7002",
      "-device",
      "virtio-net-pci,netdev=n0,romfile=",
      "-device",
      "edu,dma_mask=0xffffffffffffffff"};
  EXPECT_EQ(args, want);

  // Every knob, and a comma in a path (QEMU's ",," escape inside option values).
  v1::QemuPower p = power_;
  p.set_memory_mib(6144);
  p.set_dom0_mem_mib(1024);
  p.set_cpus(1);
  p.add_xen_args("bootscrub=0");
  p.add_dom0_args("swiotlb=force");
  p.set_edu_dma_mask(0xffffffff);
  p.add_qemu_args("-s");
  QemuImages odd = images;
  odd.initrd = "/tmp/a,b.cpio.gz";
  const std::vector<std::string> a = QemuArgs(p, odd, "/dev/pts/1", "/o/virt.dtb", "/o/d,x.dtb");
  EXPECT_EQ(a[1], "virt,virtualization=on,gic-version=3,dumpdtb=/o/d,,x.dtb");
  EXPECT_EQ(a[5], "1");
  EXPECT_EQ(a[7], "6144");
  EXPECT_EQ(a[20],
            "dom0_mem=1024M,max:1024M console=dtuart dtuart=/pl011@9000000 loglvl=all "
            "guest_loglvl=all bootscrub=0");
  EXPECT_EQ(a[22], "guest-loader,addr=0x49000000,kernel=" + k +
                       ",bootargs=console=hvc0 earlycon=xenboot rdinit=/init pci=nomsi "
                       "dmahil.dma_bits=32 swiotlb=force");
  EXPECT_EQ(a[24], "guest-loader,addr=0x4d000000,initrd=/tmp/a,,b.cpio.gz");
  EXPECT_EQ(a[30], "edu,dma_mask=0xffffffff");
  EXPECT_EQ(std::vector<std::string>(a.end() - 3, a.end()),
            (std::vector<std::string>{"-dtb", "/o/virt.dtb", "-s"}));
}

TEST_F(QemuPowerTest, MissingImagesAndProgramsAreNamed) {
  v1::QemuPower p = power_;
  p.set_initrd((dir_ / "images/nosuch.cpio.gz").string());
  EXPECT_NE(ErrorOf([&] { QemuPowerSwitch s(p, dir_ / "out"); })
                .find("nosuch.cpio.gz: the dom0 "
                      "initrd does not exist"),
            std::string::npos);
  p = power_;
  p.clear_fetch_env();
  EXPECT_NE(ErrorOf([&] {
              ResolveQemuImages(p);
            }).find("xen is not set and there is no fetch_env to take XEN= from"),
            std::string::npos);
  std::ofstream(dir_ / "images/fetch.env") << "ABI=6.1.0-99-arm64\n";
  EXPECT_NE(ErrorOf([&] { ResolveQemuImages(power_); }).find("fetch.env: no XEN= line"),
            std::string::npos);
  p = power_;
  p.set_xen((dir_ / "images/xen-4.17-arm64").string());
  p.set_kernel((dir_ / "images/vmlinuz-6.1.0-99-arm64").string());
  p.set_qemu("qemu-system-dmahil-nosuch");
  EXPECT_NE(ErrorOf([&] {
              QemuPowerSwitch s(p, dir_ / "out");
            }).find("qemu-system-dmahil-nosuch: not found or not executable"),
            std::string::npos);
}

TEST_F(QemuPowerTest, PowerOnBootsOnThePtyAndPowerOffKillsTheGroup) {
  QemuPowerSwitch power(power_, dir_ / "out");
  auto console = power.OpenConsole(console_config_, dir_ / "out/console.log");
  EXPECT_EQ(power.pid(), -1);
  EXPECT_EQ(power.Failure(), "");
  power.On();
  std::string line;
  ASSERT_TRUE(console->WaitForAgentReady(10000, &line)) << Slurp(dir_ / "out/qemu.log");
  EXPECT_EQ(line, "dmahil-qemu: board ready");
  EXPECT_GT(power.pid(), 0);
  EXPECT_EQ(power.Failure(), "");

  // The fake ran with exactly the switch's arguments, on the switch's pty.
  const auto runs = Runs(dir_ / "args");
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0], power.last_args());
  EXPECT_NE(std::find(runs[0].begin(), runs[0].end(), power.serial_path()), runs[0].end());
  EXPECT_NE(power.serial_path().rfind("/dev/pts/", 0), std::string::npos);

  const std::vector<pid_t> pids = Pids();
  ASSERT_EQ(pids.size(), 2u);  // the fake and its child
  EXPECT_EQ(pids[0], power.pid());
  power.Off();
  EXPECT_TRUE(GoneSoon(pids[0]));
  EXPECT_TRUE(GoneSoon(pids[1])) << "QEMU's child survived power off";
  EXPECT_EQ(power.pid(), -1);
  power.Off();  // idempotent

  const std::string log = Slurp(dir_ / "out/qemu.log");
  EXPECT_NE(log.find("# dmahil power on "), std::string::npos) << log;
  EXPECT_NE(log.find("fake-qemu: running"), std::string::npos) << log;  // QEMU's stderr
  EXPECT_NE(log.find("killed by power off"), std::string::npos) << log;
  const std::string console_log = Slurp(dir_ / "out/console.log");
  EXPECT_NE(console_log.find("(QEMU serial)"), std::string::npos) << console_log;
  EXPECT_NE(console_log.find("pcie@10000000: no dtb"), std::string::npos) << console_log;
}

TEST_F(QemuPowerTest, TheConsoleSurvivesPowerCyclesAndTheDestructorKills) {
  pid_t last = -1;
  {
    QemuPowerSwitch power(power_, dir_ / "out");
    auto console = power.OpenConsole(console_config_, dir_ / "out/console.log");
    for (int boot = 0; boot < 3; ++boot) {
      power.Cycle();
      ASSERT_TRUE(console->WaitForAgentReady(10000)) << "boot " << boot;
      last = power.pid();
    }
    EXPECT_EQ(Runs(dir_ / "args").size(), 3u);
    // Only the latest QEMU runs: each Cycle killed the one before.
    const std::vector<pid_t> pids = Pids();
    ASSERT_EQ(pids.size(), 6u);
    for (size_t i = 0; i + 2 < pids.size(); ++i) EXPECT_TRUE(GoneSoon(pids[i])) << i;
    EXPECT_TRUE(Alive(last));
    // An exception unwinding past the switch (e.g. a failed health check) still kills it.
  }
  EXPECT_TRUE(GoneSoon(last));
  for (pid_t p : Pids()) EXPECT_TRUE(GoneSoon(p));
}

TEST_F(QemuPowerTest, AnNvmeDiskIsAFreshBackingFileInTheBoardFolderAtEveryPowerOn) {
  power_.set_nvme_disk_mib(3);
  QemuPowerSwitch power(power_, dir_ / "out");
  const fs::path image = dir_ / "out/nvme.img";
  EXPECT_EQ(power.nvme_image_path(), image);
  auto console = power.OpenConsole(console_config_, dir_ / "out/console.log");
  power.On();
  std::string line;
  ASSERT_TRUE(console->WaitForAgentReady(10000, &line)) << Slurp(dir_ / "out/qemu.log");
  EXPECT_EQ(fs::file_size(image), 3u << 20);
  const std::vector<std::string> args = power.last_args();
  const auto drive = std::find(args.begin(), args.end(), "-drive");
  ASSERT_NE(drive, args.end());
  ASSERT_LT(drive + 3, args.end());
  EXPECT_EQ(drive[1], "file=" + image.string() + ",if=none,id=nvme0,format=raw");
  EXPECT_EQ(drive[2], "-device");
  EXPECT_EQ(drive[3], "nvme,serial=dmahil-nvme0,drive=nvme0");
  power.Off();

  // What the device wrote in one boot is gone at the next: the controller's ground truth
  // starts from zeros.
  std::ofstream(image, std::ios::binary | std::ios::in | std::ios::out) << "generation 1";
  power.On();
  ASSERT_TRUE(console->WaitForAgentReady(10000, &line));
  EXPECT_EQ(fs::file_size(image), 3u << 20);
  EXPECT_EQ(Slurp(image).find("generation 1"), std::string::npos);
  power.Off();
}

TEST_F(QemuPowerTest, WithoutAnNvmeDiskThereIsNoDrive) {
  QemuPowerSwitch power(power_, dir_ / "out");
  power.On();
  const std::vector<std::string> args = power.last_args();
  EXPECT_EQ(std::find(args.begin(), args.end(), "-drive"), args.end());
  EXPECT_FALSE(fs::exists(dir_ / "out/nvme.img"));
  power.Off();
}

TEST_F(QemuPowerTest, NonCoherentDumpsTheDtbAndDeletesDmaCoherent) {
  power_.set_non_coherent(true);
  QemuPowerSwitch power(power_, dir_ / "board");
  auto console = power.OpenConsole(console_config_, dir_ / "board/console.log");
  for (int boot = 0; boot < 2; ++boot) {  // dumped again at every power-on
    power.Cycle();
    ASSERT_TRUE(console->WaitForAgentReady(10000)) << Slurp(dir_ / "board/qemu.log");
  }
  const auto runs = Runs(dir_ / "args");
  ASSERT_EQ(runs.size(), 4u);  // dump, boot, dump, boot
  const fs::path dtb = dir_ / "board/virt.dtb";
  EXPECT_EQ(power.dtb_path(), dtb);
  for (size_t i : {0u, 2u}) {
    // The dump has the boot's arguments (the DTB records the initrd) plus dumpdtb=.
    std::vector<std::string> boot = runs[i + 1];
    ASSERT_GE(boot.size(), 2u);
    EXPECT_EQ(std::vector<std::string>(boot.end() - 2, boot.end()),
              (std::vector<std::string>{"-dtb", dtb.string()}));
    boot.resize(boot.size() - 2);
    boot[1] += ",dumpdtb=" + dtb.string();
    EXPECT_EQ(runs[i], boot);
  }
  // The fake saw the edited tree; fdtget agrees: the property is gone, the node stays.
  EXPECT_NE(Slurp(dir_ / "board/console.log").find("pcie@10000000: not dma-coherent"),
            std::string::npos);
  EXPECT_NE(
      std::system(("fdtget " + dtb.string() + " /pcie@10000000 dma-coherent 2>/dev/null").c_str()),
      0);
  EXPECT_EQ(
      std::system(("fdtget " + dtb.string() + " /pcie@10000000 compatible >/dev/null").c_str()), 0);
  const std::string log = Slurp(dir_ / "board/qemu.log");
  EXPECT_NE(log.find("# dmahil dtb dump"), std::string::npos) << log;
  EXPECT_NE(log.find("-d " + dtb.string() + " /pcie@10000000 dma-coherent"), std::string::npos)
      << log;
}

TEST_F(QemuPowerTest, AQemuThatExitsIsAFailureWithItsStderr) {
  Mode("exit");
  QemuPowerSwitch power(power_, dir_ / "out");
  power.On();
  std::string failure;
  for (int i = 0; i < 250 && (failure = power.Failure()).empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_NE(failure.find("exited on its own, exit status 1"), std::string::npos) << failure;
  EXPECT_NE(failure.find("fake-qemu: cannot boot"), std::string::npos) << failure;
  power.Off();
  EXPECT_NE(Slurp(dir_ / "out/qemu.log").find("had exited: exit status 1"), std::string::npos);
  EXPECT_EQ(power.Failure(), "");  // off: nothing is expected to run
}

TEST(ReadEnvFile, ParsesKeyValueLinesAndNamesBadOnes) {
  const fs::path f = fs::temp_directory_path() / ("dmahil-env-" + std::to_string(::getpid()));
  std::ofstream(f) << "# comment\n\nABI=6.1.0-56-arm64\nXEN=/a=b\n";
  const auto env = ReadEnvFile(f);
  EXPECT_EQ(env.at("ABI"), "6.1.0-56-arm64");
  EXPECT_EQ(env.at("XEN"), "/a=b");
  std::ofstream(f) << "ABI\n";
  EXPECT_NE(ErrorOf([&] { ReadEnvFile(f); }).find(f.string() + ":1: not KEY=VALUE"),
            std::string::npos);
  fs::remove(f);
  EXPECT_NE(ErrorOf([&] { ReadEnvFile(f); }).find(f.string() + ": cannot read"), std::string::npos);
}

// Results name what a board booted: a kernel from source by tree, commit and config, Debian's
// by package ABI, the hypervisor by path and content.
TEST(DescribeQemuSoftware, NamesTheKernelAndTheHypervisor) {
  const fs::path d = fs::temp_directory_path() / ("dmahil-sw-" + std::to_string(::getpid()));
  fs::create_directories(d);
  std::ofstream(d / "xen") << "abc";  // sha256 ba7816bf8f01cfea414140de5dae2223...
  std::ofstream(d / "kernel.env") << "ABI=6.1.192-dmahil\nXEN=" << (d / "xen").string()
                                  << "\nKERNEL=/k/Image\nKERNEL_TREE=/src/linux\n"
                                     "KERNEL_REV=0123456789abcdef0123\nKERNEL_DESCRIBE=debian/"
                                     "6.1.192-3-1-g0123456\nKERNEL_CONFIG=dom0-4k\n"
                                     "KERNEL_CONFIG_SHA=feedfacecafe\nKERNEL_PAGE_KIB=4\n";
  v1::QemuPower p;
  p.set_fetch_env((d / "kernel.env").string());
  QemuSoftware sw = DescribeQemuSoftware(p);
  EXPECT_EQ(sw.kernel,
            "Linux debian/6.1.192-3-1-g0123456 (tree /src/linux, commit 0123456789ab, config "
            "dom0-4k feedfacecafe, 4 KiB pages)");
  EXPECT_EQ(sw.hypervisor, "Xen " + (d / "xen").string() + " (sha256 ba7816bf8f01cfea)");

  std::ofstream(d / "fetch.env") << "ABI=6.1.0-57-arm64\nKERNEL=/boot/vmlinuz\n";
  p.set_fetch_env((d / "fetch.env").string());
  p.set_xen((d / "missing-xen").string());  // the user's own build, not there
  sw = DescribeQemuSoftware(p);
  EXPECT_EQ(sw.kernel, "Debian linux-image-6.1.0-57-arm64 (/boot/vmlinuz)");
  EXPECT_NE(sw.hypervisor.find("missing-xen (unreadable: "), std::string::npos) << sw.hypervisor;

  p.set_fetch_env((d / "none.env").string());
  p.clear_xen();
  sw = DescribeQemuSoftware(p);
  EXPECT_NE(sw.kernel.find("unknown: "), std::string::npos) << sw.kernel;
  EXPECT_NE(sw.hypervisor.find("cannot read"), std::string::npos) << sw.hypervisor;
  fs::remove_all(d);
}

}  // namespace
}  // namespace dmahil::lab
