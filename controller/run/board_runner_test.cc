// The one board runner (board_runner.h) on a virtual twin: a real SerialConsole on a pty
// pair, a relay that "boots" the board by writing its console, the DMA engine over TCP and
// the agents of a dmahil-vboard. A board kind added by a test in one class and one
// registration line. The qemu-xen kind against a stand-in QEMU, and the hardware kind
// against resources that do not exist, through the `dmahil` binary, with a virtual board in
// the same farm that must still run.
#include "controller/run/board_runner.h"

#include <pty.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string_view>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "agent/agent_service.h"
#include "common/host_port.h"
#include "controller/device/tcp_device_client.h"
#include "controller/run/cli_test_support.h"
#include "controller/run/kinds/virtual_kind.h"
#include "controller/run/vboard_test_support.h"

namespace dmahil::controller {
namespace {

namespace fs = std::filesystem;
using dmahil::testing::RunDmahil;
using dmahil::testing::RunningVboard;
using dmahil::testing::Slurp;

fs::path Src() { return std::getenv("DMAHIL_SOURCE_DIR"); }

/// A relay that records what it was asked and, on power-up, writes `boot` to the console.
class TwinPower final : public lab::PowerSwitch {
 public:
  TwinPower(int console_master, std::string boot, std::vector<std::string>& calls)
      : master_(console_master), boot_(std::move(boot)), calls_(calls) {}
  void On() override { Boot("on"); }
  void Off() override { calls_.push_back("off"); }
  void Cycle() override { Boot("cycle"); }
  void Reset() override { Boot("reset"); }
  std::string Describe() const override { return "twin relay"; }

 private:
  void Boot(const char* what) {
    calls_.push_back(what);
    if (boot_.empty()) return;
    const ssize_t n = write(master_, boot_.data(), boot_.size());
    EXPECT_EQ(n, static_cast<ssize_t>(boot_.size()));
  }
  int master_;
  std::string boot_;
  std::vector<std::string>& calls_;
};

/// What reached the twin's engine: requests that read memory and that write it.
struct EngineOps {
  int reads = 0;   // read, check
  int writes = 0;  // write, fill
};

/// Passes requests to the twin's engine, counting them in `ops`; before the first request
/// of pattern buffer `crash_buffer` it writes a kernel panic to the console (a board dying
/// mid-fixture).
class CrashingEngine final : public DeviceClient {
 public:
  CrashingEngine(std::unique_ptr<DeviceClient> inner, int master, uint32_t crash_buffer,
                 EngineOps& ops)
      : inner_(std::move(inner)), master_(master), crash_buffer_(crash_buffer), ops_(ops) {}
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override {
    ops_.reads += request.has_read() || request.has_check();
    ops_.writes += request.has_write() || request.has_fill();
    const v1::PatternSpec* p = request.has_fill()    ? &request.fill().pattern()
                               : request.has_check() ? &request.check().pattern()
                                                     : nullptr;
    if (crash_buffer_ != 0 && p != nullptr && p->buffer_id() == crash_buffer_ && !crashed_) {
      crashed_ = true;
      const std::string panic =
          "[  812.000000] Unable to handle kernel paging request at virtual address 0\n"
          "[  812.000100] Kernel panic - not syncing: Oops: Fatal exception\n";
      const ssize_t n = write(master_, panic.data(), panic.size());
      EXPECT_EQ(n, static_cast<ssize_t>(panic.size()));
      // Let the console's reader take the lines in before the fixture ends.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return inner_->Transact(request);
  }

 private:
  std::unique_ptr<DeviceClient> inner_;
  int master_;
  uint32_t crash_buffer_;
  EngineOps& ops_;
  bool crashed_ = false;
};

class LabBoardTwin : public ::testing::Test, public BoardKind {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dmahil-lab-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    char name[256];
    ASSERT_EQ(openpty(&master_, &slave_, name, nullptr, nullptr), 0);
    tty_ = name;
  }
  void TearDown() override {
    vboard_.reset();
    close(master_);
    close(slave_);
    if (!HasFailure()) fs::remove_all(dir_);
  }

  /// Starts the twin (zcu102-virtual with `faults`) and a farm of `fixtures` around it.
  void StartTwin(const std::vector<std::string>& faults, const std::vector<std::string>& fixtures,
                 uint32_t boot_timeout_ms = 10000) {
    const fs::path board_file = Src() / "boards/zcu102-virtual.textproto";
    vboard_ = std::make_unique<RunningVboard>(board_file, faults, dir_);
    LoadedBoard lb;
    lb.file = board_file;
    lb.board = LoadBoard(board_file);
    lb.entry.set_name("zcu102-twin");
    v1::BoardWiring& w = *lb.entry.mutable_wiring();
    w.mutable_console()->set_device(tty_);
    w.mutable_console()->set_agent_ready("dmahil-agent: dom0 ready");
    w.set_dom0_agent(vboard_->ready().agents.dom0);
    w.set_guest_agent(vboard_->ready().agents.guest);
    w.set_boot_timeout_ms(boot_timeout_ms);
    farm_.boards = {lb};
    for (const std::string& f : fixtures) {
      LoadedFixture lf;
      lf.file = Src() / "fixtures" / (f + ".textproto");
      lf.fixture = LoadFixture(lf.file);
      farm_.fixtures.push_back(lf);
    }
  }

  std::vector<v1::FixtureResult> Run() {
    CampaignOptions opt;
    opt.seed = 11;
    opt.out_dir = dir_ / "out";
    return RunBoard(farm_, farm_.boards[0], opt, *this);
  }

  // The twin as a board kind: a relay, a UART on a pty, the vboard's engine and agents.
  BoardKindTraits traits() const override {
    BoardKindTraits t;
    t.name = "twin";
    t.stale_lines_observable = stale_lines_observable_;
    return t;
  }
  uint32_t BootTimeoutMs() const override {
    return farm_.boards[0].entry.wiring().boot_timeout_ms();
  }
  std::unique_ptr<lab::PowerSwitch> OpenPower(const fs::path&) override {
    return std::make_unique<TwinPower>(master_, boot_, calls_);
  }
  std::unique_ptr<lab::SerialConsole> OpenConsole(const fs::path& log) override {
    return std::make_unique<lab::SerialConsole>(farm_.boards[0].entry.wiring().console(), log);
  }
  std::unique_ptr<DeviceClient> OpenEngine() override {
    const HostPort hp = ParseHostPort(vboard_->ready().device);
    auto tcp = std::make_unique<TcpDeviceClient>(hp.host, hp.port);
    return std::make_unique<CrashingEngine>(std::move(tcp), master_, crash_buffer_, engine_ops_);
  }
  AgentEndpoints Agents(const std::string&) override {
    const v1::BoardWiring& w = farm_.boards[0].entry.wiring();
    return {w.dom0_agent(), w.guest_agent()};
  }

  fs::path dir_;
  int master_ = -1;
  int slave_ = -1;
  std::string tty_;
  std::unique_ptr<RunningVboard> vboard_;
  LoadedFarm farm_;
  std::string boot_ = "U-Boot 2023.01\nXen 4.17\n[    3.1] dmahil-agent: dom0 ready\n";
  std::vector<std::string> calls_;
  uint32_t crash_buffer_ = 0;
  EngineOps engine_ops_;
  bool stale_lines_observable_ = true;  // false: a board like qemu-xen, without caches
};

TEST_F(LabBoardTwin, AHealthyBoardIsPowerCycledCheckedRunAndSwitchedOff) {
  StartTwin({}, {"foreign-to-device", "foreign-from-device"});
  const auto results = Run();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.verdict(), v1::VERDICT_PASS) << r.ShortDebugString();
  EXPECT_EQ(calls_, (std::vector<std::string>{"cycle", "off"}));
  const std::string console = Slurp(dir_ / "out/zcu102-twin/console.log");
  EXPECT_NE(console.find("dmahil-agent: dom0 ready"), std::string::npos) << console;
}

TEST_F(LabBoardTwin, AFailingKnownGoodFixtureIsTheCodeUnderTestAndTheFixturesStillRun) {
  // The board's kernel has a cache bug: the known-good fixture fails. The board works (the
  // fixture ran and the oracle judged it), so tonight's fixtures run and say what is wrong;
  // an offline board would hide the regression behind ERRORs.
  StartTwin({"cache-flush-local-addr"}, {"foreign-to-device", "local-to-device"});
  const auto results = Run();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].verdict(), v1::VERDICT_FAIL) << results[0].ShortDebugString();
  EXPECT_EQ(results[0].diagnosis(), v1::DIAGNOSIS_STALE_LINE) << results[0].ShortDebugString();
  // Local pages take the arch path, which the fault leaves alone.
  EXPECT_EQ(results[1].verdict(), v1::VERDICT_PASS) << results[1].ShortDebugString();
  EXPECT_EQ(calls_, (std::vector<std::string>{"cycle", "off"}));
}

TEST_F(LabBoardTwin, AWrongBusAddressIsReadNeverWrittenAndFailsOnTheMappingAudit) {
  // dma-ops-bypass-xen: the kernel hands out the foreign pages' pfn addresses (memory
  // dom0 no longer owns). The engine reads there (the device-read half of the fixture)
  // but never writes; the verdict is the audit's, with the fault's displacement.
  StartTwin({"dma-ops-bypass-xen"}, {"foreign-bidirectional"});
  const auto results = Run();
  ASSERT_EQ(results.size(), 1u);
  const v1::FixtureResult& r = results[0];
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL) << r.ShortDebugString();
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS) << r.ShortDebugString();
  ASSERT_GT(r.segments_size(), 0);
  const v1::SegmentReport& s = r.segments(0);
  EXPECT_EQ(r.displacement(),
            (static_cast<int64_t>(s.pfn()) - static_cast<int64_t>(s.bfn())) * 4096)
      << r.ShortDebugString();
  EXPECT_TRUE(s.write_refused()) << r.ShortDebugString();
  EXPECT_GT(engine_ops_.reads, 0) << "the device reads a wrong address";
  EXPECT_EQ(engine_ops_.writes, 0) << "the device wrote to a wrong bus address";
}

TEST_F(LabBoardTwin, AKnownGoodFixtureThatCannotRunMakesTheBoardOfflineNeverAFailure) {
  StartTwin({}, {"foreign-to-device", "foreign-from-device"});
  // More pages than an agent maps for one buffer (1024): the agents refuse the health
  // fixture, which cannot run at all.
  v1::Fixture too_big = farm_.fixtures[0].fixture;
  too_big.set_name("too-big");
  too_big.set_pages(4096);
  farm_.boards[0].health_fixture = too_big;
  const auto results = Run();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.verdict(), v1::VERDICT_ERROR);
    EXPECT_NE(r.detail().find("board offline: health check: known-good fixture too-big could "
                              "not run: "),
              std::string::npos)
        << r.detail();
  }
  EXPECT_EQ(calls_, (std::vector<std::string>{"cycle", "off"}));
}

/// A dom0 agent that says it is linux-xen and how its kernel sees the engine; nothing else.
class LinuxXenInfoOnly final : public agent::Backend {
 public:
  LinuxXenInfoOnly(bool coherent, bool audited, uint32_t page_size = 4096)
      : coherent_(coherent), audited_(audited), page_size_(page_size) {}
  v1::AgentInfo Info() override {
    v1::AgentInfo i;
    i.set_role(v1::ROLE_DOM0);
    i.set_backend("linux-xen");
    i.set_line_size(64);
    i.set_page_size(page_size_);
    i.set_engine("edu 0000:00:02.0");
    i.set_dma_coherent(coherent_);
    i.set_maintenance_audited(audited_);
    return i;
  }
  std::optional<uint64_t> BufferBytes(uint32_t) override { return std::nullopt; }
  grpc::Status AllocGrants(const v1::AllocGrantsRequest&, v1::AllocGrantsResponse*) override {
    return No();
  }
  grpc::Status MapForeign(const v1::MapForeignRequest&, v1::BufferInfo*) override { return No(); }
  grpc::Status AllocLocal(const v1::AllocLocalRequest&, v1::BufferInfo*) override { return No(); }
  grpc::Status ComposeBuffer(const v1::ComposeBufferRequest&, v1::BufferInfo*) override {
    return No();
  }
  grpc::Status ReleaseBuffer(uint32_t) override { return No(); }
  grpc::Status DmaMap(const v1::DmaMapRequest&, v1::DmaMapping*) override { return No(); }
  grpc::Status DmaSync(uint32_t, v1::SyncFor, v1::DmaSyncResponse*) override { return No(); }
  grpc::Status DmaUnmap(uint32_t, v1::DmaUnmapResponse*) override { return No(); }
  grpc::Status CpuWrite(uint32_t, uint64_t, const uint8_t*, uint64_t) override { return No(); }
  grpc::Status CpuRead(uint32_t, uint64_t, uint8_t*, uint64_t) override { return No(); }
  grpc::Status CpuCleanInvalidate(uint32_t, uint64_t, uint64_t) override { return No(); }
  grpc::Status BlockIo(const v1::BlockIoRequest&, v1::BlockIoResponse*) override { return No(); }

 private:
  static grpc::Status No() { return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "info only"); }
  bool coherent_, audited_;
  uint32_t page_size_;
};

TEST_F(LabBoardTwin, ALinuxXenKernelThatDisagreesWithTheBoardFileIsOfflineBeforeAnyFixture) {
  struct Case {
    bool coherent, audited;
    uint32_t page_size;
    const char* why;
  };
  // The twin's board file (zcu102-virtual) says the engine is not coherent, 4 KiB pages.
  for (const Case c :
       {Case{true, true, 4096,
             "dom0's kernel sees the engine (edu 0000:00:02.0) as dma-coherent, the board "
             "file says not coherent"},
        Case{false, false, 4096,
             "the engine is not coherent and a twin board shows no stale lines, but dmahil.ko "
             "records no cache maintenance"},
        Case{false, true, 65536,
             "dom0's kernel runs 65536-byte pages, the board file says linux_page_size 4096"}}) {
    farm_ = LoadedFarm{};
    stale_lines_observable_ = false;
    StartTwin({}, {"foreign-to-device"});
    LinuxXenInfoOnly backend(c.coherent, c.audited, c.page_size);
    agent::AgentService service(backend);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    farm_.boards[0].entry.mutable_wiring()->set_dom0_agent("127.0.0.1:" + std::to_string(port));
    const auto results = Run();
    server->Shutdown();
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].verdict(), v1::VERDICT_ERROR);
    EXPECT_NE(results[0].detail().find(c.why), std::string::npos) << results[0].detail();
  }
}

TEST_F(LabBoardTwin, APanicWhileBootingIsReportedWithItsExcerptAtOnce) {
  boot_ =
      "Xen 4.17\n[    2.0] Unable to handle kernel NULL pointer dereference\n"
      "[    2.1] Kernel panic - not syncing: Attempted to kill init!\n";
  StartTwin({}, {"foreign-to-device"}, 60000);
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = Run();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));  // not 60 s
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(results[0].detail().find("crashed while booting"), std::string::npos);
  EXPECT_NE(results[0].detail().find("Attempted to kill init"), std::string::npos)
      << results[0].detail();
}

TEST_F(LabBoardTwin, NoAgentOnTheConsoleWithinTheBootTimeoutIsOffline) {
  boot_ = "U-Boot 2023.01\nStarting kernel ...\n";
  StartTwin({}, {"foreign-to-device"}, 500);
  const auto results = Run();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(
      results[0].detail().find("no \"dmahil-agent: dom0 ready\" on " + tty_ + " within 500 ms"),
      std::string::npos)
      << results[0].detail();
  EXPECT_EQ(calls_, (std::vector<std::string>{"cycle", "off"}));
}

TEST_F(LabBoardTwin, ACrashUnderAFixtureIsAnInfrastructureErrorAndEndsTheRun) {
  crash_buffer_ = 3;  // the second farm fixture's buffer (fixture i uses 2i + 1)
  StartTwin({}, {"foreign-to-device", "foreign-from-device", "local-to-device"});
  const auto results = Run();
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].verdict(), v1::VERDICT_PASS);
  EXPECT_EQ(results[1].verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(results[1].detail().find("board crashed under this fixture"), std::string::npos)
      << results[1].detail();
  EXPECT_NE(results[1].detail().find("Kernel panic - not syncing"), std::string::npos);
  EXPECT_EQ(results[2].verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(results[2].detail().find("board lost earlier in the run"), std::string::npos);
  EXPECT_EQ(calls_.back(), "off");
}

// ---- The qemu-xen kind, as registered: QEMU as power (a stand-in QEMU here) ----

/// The qemu path through the real opener: lab::QemuPowerSwitch starting
/// controller/lab/testdata/fake-qemu.sh on a pty, the console on that pty, the engine over
/// (lazy) TCP. The healthy run borrows a dmahil-vboard's agents and engine.
class QemuBoardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dmahil-qemu-board-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "images");
    for (const char* f : {"xen", "vmlinuz", "board.cpio.gz"})
      std::ofstream(dir_ / "images" / f) << "x";
    setenv("FAKE_QEMU_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    vboard_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }
  void Mode(const std::string& mode) { std::ofstream(dir_ / "mode") << mode << "\n"; }
  /// zcu102-virtual with a dma-coherent engine, in the test's folder.
  fs::path CoherentTwin() {
    std::string text = Slurp(Src() / "boards/zcu102-virtual.textproto");
    for (size_t at; (at = text.find("coherent: false")) != std::string::npos;)
      text.replace(at, 15, "coherent: true");
    const fs::path file = dir_ / "zcu102-coherent.textproto";
    std::ofstream(file) << text;
    return file;
  }

  /// A farm of `fixtures` on one QEMU_XEN-wired board; agents and engine at `dom0`,
  /// `guest`, `engine` (nothing listens there unless a vboard does).
  void Wire(const std::vector<std::string>& fixtures, uint32_t boot_timeout_ms,
            const std::string& dom0 = "127.0.0.1:1", const std::string& guest = "127.0.0.1:2",
            const std::string& engine = "127.0.0.1:3",
            const fs::path& board_file = Src() / "boards/zcu102-virtual.textproto") {
    LoadedBoard lb;
    lb.file = board_file;  // the vboard's facts, for the oracle
    lb.board = LoadBoard(lb.file);
    lb.entry.set_name("qemu-fake");
    v1::BoardWiring& w = *lb.entry.mutable_wiring();
    v1::QemuPower& q = *w.mutable_power()->mutable_qemu();
    q.set_qemu((Src() / "controller/lab/testdata/fake-qemu.sh").string());
    q.set_xen((dir_ / "images/xen").string());
    q.set_kernel((dir_ / "images/vmlinuz").string());
    q.set_initrd((dir_ / "images/board.cpio.gz").string());
    q.set_dom0_agent_port(17900);
    q.set_guest_agent_port(17901);
    q.set_engine_port(17902);
    w.mutable_console()->set_agent_ready("dmahil-qemu: board ready");
    w.set_engine_tcp(engine);
    w.set_dom0_agent(dom0);
    w.set_guest_agent(guest);
    w.set_boot_timeout_ms(boot_timeout_ms);
    farm_.boards = {lb};
    for (const std::string& f : fixtures) {
      LoadedFixture lf;
      lf.file = Src() / "fixtures" / (f + ".textproto");
      lf.fixture = LoadFixture(lf.file);
      farm_.fixtures.push_back(lf);
    }
  }
  std::vector<v1::FixtureResult> Run() {
    CampaignOptions opt;
    opt.seed = 11;
    opt.out_dir = dir_ / "out";
    const std::unique_ptr<BoardKind> kind =
        FindBoardKind(v1::BOARD_KIND_QEMU_XEN)->make(farm_.boards[0], opt);
    return RunBoard(farm_, farm_.boards[0], opt, *kind);
  }
  /// Every process the fake started is gone (zombies count as gone).
  void ExpectQemuGone() {
    std::ifstream in(dir_ / "pids");
    int n = 0;
    for (pid_t p; in >> p; ++n) {
      bool alive = true;
      for (int i = 0; i < 250 && alive; ++i) {
        std::ifstream stat("/proc/" + std::to_string(p) + "/stat");
        std::string text;
        alive = std::getline(stat, text) && text.substr(text.rfind(')') + 2, 1) != "Z";
        if (alive) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      EXPECT_FALSE(alive) << "pid " << p << " survived power off";
    }
    EXPECT_GT(n, 0) << "the fake QEMU never ran";
  }

  fs::path dir_;
  LoadedFarm farm_;
  std::unique_ptr<RunningVboard> vboard_;
};

TEST_F(QemuBoardTest, NoReadyLineWithinTheBootTimeoutIsAnErrorWithTheConsoleTail) {
  Mode("silent");
  Wire({"foreign-to-device", "foreign-from-device"}, 1500);
  const auto results = Run();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.verdict(), v1::VERDICT_ERROR);
    EXPECT_NE(r.detail().find("board offline: health check: no \"dmahil-qemu: board ready\" on "
                              "/dev/pts/"),
              std::string::npos)
        << r.detail();
    EXPECT_NE(r.detail().find("(QEMU serial) within 1500 ms of power-on"), std::string::npos)
        << r.detail();
    EXPECT_NE(r.detail().find("last 40 lines of " + (dir_ / "out/qemu-fake/console.log").string()),
              std::string::npos)
        << r.detail();
    EXPECT_NE(r.detail().find("Linux version 6.1.0-fake-arm64"), std::string::npos) << r.detail();
  }
  ExpectQemuGone();
  EXPECT_NE(Slurp(dir_ / "out/qemu-fake/qemu.log").find("killed by power off"), std::string::npos);
}

TEST_F(QemuBoardTest, AQemuThatExitsEndsTheBootAtOnceWithItsStderr) {
  Mode("exit");
  Wire({"foreign-to-device"}, 60000);
  const auto t0 = std::chrono::steady_clock::now();
  const auto results = Run();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));  // not 60 s
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(results[0].detail().find("health check: power: fake-qemu.sh (pid "), std::string::npos)
      << results[0].detail();
  EXPECT_NE(results[0].detail().find("exited on its own, exit status 1"), std::string::npos)
      << results[0].detail();
  EXPECT_NE(results[0].detail().find("fake-qemu: cannot boot"), std::string::npos)
      << results[0].detail();
}

TEST_F(QemuBoardTest, AXenPanicWhileBootingIsReportedWithItsExcerpt) {
  Mode("panic");
  Wire({"foreign-to-device"}, 60000);
  const auto results = Run();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(results[0].detail().find("crashed while booting"), std::string::npos)
      << results[0].detail();
  EXPECT_NE(results[0].detail().find("Panic on CPU 0"), std::string::npos) << results[0].detail();
  ExpectQemuGone();
}

TEST_F(QemuBoardTest, MissingImagesAreNamedAndNothingStarts) {
  Wire({"foreign-to-device"}, 1000);
  fs::remove(dir_ / "images/board.cpio.gz");
  const auto results = Run();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].verdict(), v1::VERDICT_ERROR);
  EXPECT_NE(results[0].detail().find("power: " + (dir_ / "images/board.cpio.gz").string() +
                                     ": the dom0 initrd does not exist"),
            std::string::npos)
      << results[0].detail();
  EXPECT_NE(results[0].detail().find("console: no console device"), std::string::npos)
      << results[0].detail();
  EXPECT_FALSE(fs::exists(dir_ / "args"));
}

TEST_F(QemuBoardTest, AHealthyBoardRunsItsFixturesOverTcpAndIsKilledAfter) {
  // A coherent twin: a non-coherent qemu-xen board would need dmahil.ko's maintenance
  // audit, which a vboard's agent does not have (the next test).
  const fs::path board = CoherentTwin();
  vboard_ = std::make_unique<RunningVboard>(board, std::vector<std::string>{}, dir_);
  const kinds::VboardEndpoints& r = vboard_->ready();
  Wire({"foreign-to-device", "foreign-from-device"}, 20000, r.agents.dom0, r.agents.guest, r.device,
       board);
  const auto results = Run();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& res : results)
    EXPECT_EQ(res.verdict(), v1::VERDICT_PASS) << res.ShortDebugString();
  ExpectQemuGone();
  const std::string console = Slurp(dir_ / "out/qemu-fake/console.log");
  EXPECT_NE(console.find("dmahil-qemu: board ready"), std::string::npos) << console;
  EXPECT_NE(Slurp(dir_ / "out/qemu-fake/qemu.log").find("# dmahil power on"), std::string::npos);
}

TEST(LabBoardFarm, EveryMissingResourceIsNamedAndTheOtherBoardsStillRun) {
  const fs::path dir = fs::temp_directory_path() / ("dmahil-lab-farm-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string src = Src().string();
  std::ofstream(dir / "farm.textproto") << R"(
name: "lab-missing"
fixture_file: ")" << src << R"(/fixtures/foreign-to-device.textproto"
board { name: "zcu102-virtual" board_file: ")"
                                        << src << R"(/boards/zcu102-virtual.textproto" }
board {
  name: "zcu102-lab"
  board_file: ")" << src << R"(/boards/zcu102.textproto"
  wiring {
    power { gpio { power { chip: "gpiochip-dmahil-nosuch" offset: 3 } } }
    console { device: "/dev/ttyDMAHIL-nosuch" baud: 115200 agent_ready: "ready" }
    engine { vid: 0x1d50 pid: 0x6170 serial: "DMAHIL-NOSUCH" ep_out: 0x02 ep_in: 0x82 }
    dom0_agent: "127.0.0.1:1"
    guest_agent: "127.0.0.1:2"
  }
}
)";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(RunDmahil("run --farm " + (dir / "farm.textproto").string() + " --out " +
                          (dir / "out").string(),
                      dir / "out"),
            2);  // an infrastructure error, not a test failure
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));  // no hang
  const auto results = nlohmann::json::parse(Slurp(dir / "out/results.json"));
  bool virtual_passed = false;
  bool lab_offline = false;
  for (const auto& r : results["results"]) {
    if (r["board"] == "zcu102-virtual") virtual_passed = r["verdict"] == "pass";
    if (r["board"] != "zcu102-lab") continue;
    const std::string detail = r["detail"];
    lab_offline = r["verdict"] == "error" && detail.find("board offline") != std::string::npos;
    EXPECT_NE(detail.find("power: gpiochip-dmahil-nosuch"), std::string::npos) << detail;
    EXPECT_NE(detail.find("console: /dev/ttyDMAHIL-nosuch"), std::string::npos) << detail;
    EXPECT_NE(detail.find("engine: usb 1d50:6170 serial DMAHIL-NOSUCH"), std::string::npos)
        << detail;
  }
  EXPECT_TRUE(virtual_passed) << Slurp(dir / "out/results.json");
  EXPECT_TRUE(lab_offline) << Slurp(dir / "out/results.json");
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace dmahil::controller
