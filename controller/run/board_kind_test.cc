// The board-kind registry (board_kind.h): a new kind — here a double with its own power
// backend — is one class and one registration line, and then runs a farm through the same
// runner as every shipped kind. An unregistered kind is an ERROR, never a crash.
#include "controller/run/board_kind.h"

#include <pty.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/host_port.h"
#include "controller/device/tcp_device_client.h"
#include "controller/run/campaign.h"
#include "controller/run/cli_test_support.h"
#include "controller/run/vboard_test_support.h"

namespace dmahil::controller {
namespace {

namespace fs = std::filesystem;

fs::path Src() { return std::getenv("DMAHIL_SOURCE_DIR"); }

/// The power backend double: "boots" by printing a ready line on a pty; counts switches.
class PrintingPower final : public lab::PowerSwitch {
 public:
  PrintingPower(int tty, int* cycles) : tty_(tty), cycles_(cycles) {}
  void On() override {
    ++*cycles_;
    const std::string line = "double: up\n";
    EXPECT_EQ(write(tty_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  void Off() override {}
  void Cycle() override { On(); }
  void Reset() override { On(); }
  std::string Describe() const override { return "printing double"; }

 private:
  int tty_;
  int* cycles_;
};

/// The kind double: its power and console are the pty pair, its agents and engine a vboard's.
class DoubleKind final : public BoardKind {
 public:
  static inline const testing::RunningVboard* vboard = nullptr;
  static inline int master = -1;
  static inline int slave = -1;
  static inline std::string tty;
  static inline int cycles = 0;

  BoardKindTraits traits() const override { return Traits(); }
  uint32_t BootTimeoutMs() const override { return 10000; }
  std::unique_ptr<lab::PowerSwitch> OpenPower(const fs::path&) override {
    return std::make_unique<PrintingPower>(master, &cycles);
  }
  std::unique_ptr<lab::SerialConsole> OpenConsole(const fs::path& log) override {
    v1::SerialConsole c;
    c.set_device(tty);
    c.set_agent_ready("^double: up");
    return std::make_unique<lab::SerialConsole>(c, log);
  }
  std::unique_ptr<DeviceClient> OpenEngine() override {
    const HostPort hp = ParseHostPort(vboard->ready().device);
    return std::make_unique<TcpDeviceClient>(hp.host, hp.port);
  }
  AgentEndpoints Agents(const std::string&) override { return vboard->ready().agents; }
  static BoardKindTraits Traits() {
    BoardKindTraits t;
    t.name = "double";
    return t;
  }
};

constexpr int kDoubleKind = 77;  // not a board.proto BoardKind value

TEST(BoardKindRegistry, ANewKindIsOneClassAndOneRegistrationLine) {
  const fs::path dir = fs::temp_directory_path() / ("dmahil-kind-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  char name[256];
  ASSERT_EQ(openpty(&DoubleKind::master, &DoubleKind::slave, name, nullptr, nullptr), 0);
  DoubleKind::tty = name;
  const testing::RunningVboard vboard(Src() / "boards/zcu102-virtual.textproto", {}, dir);
  DoubleKind::vboard = &vboard;

  // The registration line:
  RegisterBoardKind(kDoubleKind,
                    {DoubleKind::Traits(), [](const LoadedBoard&, const CampaignOptions&) {
                       return std::make_unique<DoubleKind>();
                     }});

  LoadedFarm farm;
  LoadedBoard lb;
  lb.file = Src() / "boards/zcu102-virtual.textproto";
  lb.board = LoadBoard(lb.file);
  lb.board.set_kind(static_cast<v1::BoardKind>(kDoubleKind));
  lb.entry.set_name("double-1");
  farm.boards = {lb};
  for (const char* f : {"foreign-to-device", "foreign-from-device"}) {
    LoadedFixture lf;
    lf.file = Src() / "fixtures" / (std::string(f) + ".textproto");
    lf.fixture = LoadFixture(lf.file);
    farm.fixtures.push_back(lf);
  }
  CampaignOptions opt;
  opt.out_dir = dir / "out";
  const auto results = RunCampaign(farm, opt);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_EQ(r.verdict(), v1::VERDICT_PASS) << r.ShortDebugString();
  EXPECT_EQ(DoubleKind::cycles, 1);  // one power-cycle, then the health check and fixtures
  EXPECT_EQ(TraitsOf(lb.board).name, "double");
  EXPECT_NE(testing::Slurp(dir / "out/double-1/console.log").find("double: up"), std::string::npos);

  EXPECT_THROW(RegisterBoardKind(kDoubleKind, {DoubleKind::Traits(), {}}), std::logic_error);

  lb.board.set_kind(static_cast<v1::BoardKind>(kDoubleKind + 1));  // registered by nobody
  farm.boards = {lb};
  for (const auto& r : RunCampaign(farm, opt)) {
    EXPECT_EQ(r.verdict(), v1::VERDICT_ERROR);
    EXPECT_NE(r.detail().find("board kind 78 is not supported"), std::string::npos) << r.detail();
  }
  close(DoubleKind::master);
  close(DoubleKind::slave);
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace dmahil::controller
