// SerialConsole on a real pty pair: the test writes to the master, the console opens the
// slave's path as its tty.
#include "controller/lab/serial_console.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controller/lab/lab_error.h"

namespace dmahil::lab {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

long MsSince(Clock::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

std::vector<std::string> FileLines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

class SerialConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char name[256] = {};
    ASSERT_EQ(openpty(&master_, &slave_, name, nullptr, nullptr), 0);
    slave_path_ = name;
    dir_ = fs::temp_directory_path() /
           ("dmahil-console-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    log_ = dir_ / "board" / "console.log";
  }

  void TearDown() override {
    if (master_ >= 0) close(master_);
    if (slave_ >= 0) close(slave_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  v1::SerialConsole Config() const {
    v1::SerialConsole config;
    config.set_device(slave_path_);
    config.set_agent_ready("dmahil-agent: dom0 ready");
    return config;
  }

  // Writes `text` to the master: what the board sends.
  void Board(const std::string& text) const {
    ASSERT_EQ(write(master_, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }

  int master_ = -1;
  int slave_ = -1;
  std::string slave_path_;
  fs::path dir_;
  fs::path log_;
};

TEST_F(SerialConsoleTest, CapturesLinesWithTimestampsIntoTheLog) {
  SerialConsole console(Config(), log_);
  Board("U-Boot 2023.01\r\n");
  ASSERT_TRUE(console.WaitFor("^U-Boot", 2000));
  // A gap the timestamps must show.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  Board("Starting kernel ...\r\n\r\nno newline yet");
  std::string line;
  ASSERT_TRUE(console.WaitFor("kernel", 2000, &line));
  EXPECT_EQ(line, "Starting kernel ...");
  EXPECT_EQ(console.line_count(), 3u);
  console.Close();

  const std::vector<std::string> lines = FileLines(log_);
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  ASSERT_EQ(lines.size(), 6u) << all;
  EXPECT_TRUE(std::regex_match(
      lines[0], std::regex("# dmahil console " + slave_path_ +
                           R"( 115200 8N1, opened \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z .*)")))
      << lines[0];
  const std::regex timed(R"(\[ *(\d+) ms\] (.*))");
  std::smatch m1;
  std::smatch m2;
  ASSERT_TRUE(std::regex_match(lines[1], m1, timed)) << lines[1];
  ASSERT_TRUE(std::regex_match(lines[2], m2, timed)) << lines[2];
  EXPECT_EQ(m1[2].str(), "U-Boot 2023.01");  // no '\r'
  EXPECT_EQ(m2[2].str(), "Starting kernel ...");
  EXPECT_GE(std::stol(m2[1].str()) - std::stol(m1[1].str()), 140);
  EXPECT_TRUE(std::regex_match(lines[3], timed)) << lines[3];  // the empty line
  EXPECT_TRUE(std::regex_match(lines[4], std::regex(R"(\[ *\d+ ms\] no newline yet)")))
      << lines[4];  // the partial line, logged at Close
  EXPECT_EQ(lines[5].rfind("# closed at ", 0), 0u) << lines[5];
}

TEST_F(SerialConsoleTest, WaitForFindsALineWrittenLater) {
  SerialConsole console(Config(), log_);
  std::thread board([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    Board("[    3.5] systemd[1]: Started dmahil-agent.service\r\n");
    Board("dmahil-agent: dom0 ready on 10.0.0.2:50051\r\n");
  });
  const Clock::time_point start = Clock::now();
  std::string line;
  const bool found = console.WaitForAgentReady(5000, &line);
  const long ms = MsSince(start);
  board.join();
  EXPECT_TRUE(found);
  EXPECT_EQ(line, "dmahil-agent: dom0 ready on 10.0.0.2:50051");
  EXPECT_GE(ms, 150);  // it did wait for the line
  EXPECT_LT(ms, 5000);
}

TEST_F(SerialConsoleTest, WaitForTimesOutWhenTheLineNeverComes) {
  SerialConsole console(Config(), log_);
  Board("login: \r\n");
  const Clock::time_point start = Clock::now();
  EXPECT_FALSE(console.WaitFor("dom0 ready", 300));
  const long ms = MsSince(start);
  EXPECT_GE(ms, 300);
  EXPECT_LT(ms, 1500);
  EXPECT_FALSE(console.crash().has_value());
}

TEST_F(SerialConsoleTest, MatchesConsumeUpToTheMatchingLine) {
  SerialConsole console(Config(), log_);
  Board("alpha\nbeta\ngamma\n");
  ASSERT_TRUE(console.WaitFor("beta", 2000));
  ASSERT_TRUE(console.WaitFor("gamma", 2000));  // received before, still pending
  EXPECT_FALSE(console.WaitFor("alpha", 100));  // consumed by the first match
  Board("alpha again\n");
  EXPECT_TRUE(console.WaitFor("alpha", 2000));
}

TEST_F(SerialConsoleTest, APanicMidBootEndsTheWaitWithAnExcerpt) {
  SerialConsole console(Config(), log_);
  std::thread board([this] {
    std::string boot;
    for (int i = 0; i < 30; ++i)
      boot += "[    1." + std::to_string(100 + i) + "] probe " + std::to_string(i) + "\r\n";
    Board(boot);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Board(
        "[    2.000000] Unable to handle kernel NULL pointer dereference at virtual address "
        "0000000000000008\r\n");
    std::string after;
    for (int i = 0; i < 50; ++i)
      after += "[    2.0" + std::to_string(10 + i) + "] oops detail " + std::to_string(i) + "\r\n";
    Board(after);
  });
  const Clock::time_point start = Clock::now();
  const bool found = console.WaitForAgentReady(20000);
  const long ms = MsSince(start);
  board.join();
  EXPECT_FALSE(found);
  EXPECT_LT(ms, 5000);  // ended by the crash, not the 20 s timeout
  // A later wait ends at once too.
  const Clock::time_point again = Clock::now();
  EXPECT_FALSE(console.WaitFor("oops detail", 5000));
  EXPECT_LT(MsSince(again), 1000);

  // The excerpt grows to 40 lines after the crash line as they arrive (bounded wait).
  std::optional<ConsoleCrash> crash;
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
  do {
    crash = console.crash();
  } while ((!crash || crash->excerpt.size() < 61) && Clock::now() < deadline &&
           (std::this_thread::sleep_for(std::chrono::milliseconds(10)), true));
  ASSERT_TRUE(crash.has_value());
  EXPECT_EQ(crash->kind, "linux-bad-access");
  EXPECT_EQ(crash->line.number, 31u);
  EXPECT_NE(crash->line.text.find("NULL pointer dereference"), std::string::npos);
  ASSERT_EQ(crash->excerpt.size(), 20u + 1u + 40u);
  EXPECT_EQ(crash->excerpt.front().text, "[    1.110] probe 10");
  EXPECT_EQ(crash->excerpt.back().text, "[    2.049] oops detail 39");
  EXPECT_GE(crash->line.ms, 90u);

  console.ClearCrash();
  EXPECT_FALSE(console.crash().has_value());
  Board("dmahil-agent: dom0 ready\r\n");
  EXPECT_TRUE(console.WaitForAgentReady(2000));
}

TEST_F(SerialConsoleTest, AWarningIsRecordedButDoesNotEndTheWait) {
  SerialConsole console(Config(), log_);
  Board(
      "[   20.5] WARNING: CPU: 3 PID: 412 at kernel/dma/mapping.c:532 "
      "dma_map_page_attrs+0x1f4/0x3b0\r\n"
      "[   20.6] Call trace:\r\n"
      "dmahil-agent: dom0 ready\r\n");
  EXPECT_TRUE(console.WaitForAgentReady(2000));
  EXPECT_FALSE(console.crash().has_value());
  const std::vector<ConsoleCrash> warnings = console.warnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].kind, "linux-warning");
  EXPECT_EQ(warnings[0].line.number, 1u);
}

// Linux ptys keep the baud, CSTOPB, CRTSCTS, PARODD and the input parity flags (INPCK,
// IGNPAR) but always clear PARENB, and (kernel 6.x here) refuse CS5..CS7 with EINVAL;
// what a pty cannot hold is checked through what it does keep.
TEST_F(SerialConsoleTest, ConfigurationIsAppliedToTheTty) {
  v1::SerialConsole config = Config();
  config.set_baud(57600);
  config.set_parity(v1::SerialConsole::PARITY_EVEN);
  config.set_stop_bits(2);
  config.set_rts_cts(true);
  {
    SerialConsole console(config, log_);
    termios t{};
    ASSERT_EQ(tcgetattr(slave_, &t), 0);
    EXPECT_EQ(cfgetospeed(&t), static_cast<speed_t>(B57600));
    EXPECT_EQ(cfgetispeed(&t), static_cast<speed_t>(B57600));
    EXPECT_EQ(t.c_cflag & CSIZE, static_cast<tcflag_t>(CS8));
    EXPECT_NE(t.c_iflag & INPCK, 0u);  // parity checked on input
    EXPECT_EQ(t.c_iflag & IGNPAR, 0u);
    EXPECT_EQ(t.c_cflag & PARODD, 0u);  // even
    EXPECT_NE(t.c_cflag & CSTOPB, 0u);
    EXPECT_NE(t.c_cflag & CRTSCTS, 0u);
    EXPECT_EQ(t.c_lflag & (ICANON | ECHO), 0u);  // raw
  }
  config.set_parity(v1::SerialConsole::PARITY_ODD);
  {
    SerialConsole console(config, log_);
    termios t{};
    ASSERT_EQ(tcgetattr(slave_, &t), 0);
    EXPECT_NE(t.c_cflag & PARODD, 0u);
    EXPECT_NE(t.c_iflag & INPCK, 0u);
  }
  int opened = 2;
  // 7 data bits: applied where the tty accepts it, else a LabError naming the device.
  config.set_data_bits(7);
  try {
    SerialConsole console(config, log_);
    ++opened;
    termios t{};
    ASSERT_EQ(tcgetattr(slave_, &t), 0);
    EXPECT_EQ(t.c_cflag & CSIZE, static_cast<tcflag_t>(CS7));
  } catch (const LabError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(slave_path_ + ": cannot set 7 data bits: ", 0), 0u)
        << e.what();
  }
  // The defaults: 115200 8N1, no flow control.
  {
    SerialConsole console(Config(), log_);
    ++opened;
    termios t{};
    ASSERT_EQ(tcgetattr(slave_, &t), 0);
    EXPECT_EQ(cfgetospeed(&t), static_cast<speed_t>(B115200));
    EXPECT_EQ(t.c_cflag & CSIZE, static_cast<tcflag_t>(CS8));
    EXPECT_NE(t.c_iflag & IGNPAR, 0u);  // no parity (Asio sets IGNPAR, leaves INPCK)
    EXPECT_EQ(t.c_cflag & PARODD, 0u);
    EXPECT_EQ(t.c_cflag & CSTOPB, 0u);
    EXPECT_EQ(t.c_cflag & CRTSCTS, 0u);
  }
  // Every open appended its header to the same log (a failed open fails before the log).
  int headers = 0;
  for (const std::string& l : FileLines(log_)) headers += l.rfind("# dmahil console ", 0) == 0;
  EXPECT_EQ(headers, opened);
}

TEST_F(SerialConsoleTest, SendWritesToTheTty) {
  SerialConsole console(Config(), log_);
  console.Send("root\n");
  std::string got;
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(2);
  while (got.size() < 5 && Clock::now() < deadline) {
    pollfd p{master_, POLLIN, 0};
    if (poll(&p, 1, 100) == 1) {
      char buf[64];
      const ssize_t n = read(master_, buf, sizeof buf);
      if (n > 0) got.append(buf, static_cast<size_t>(n));
    }
  }
  EXPECT_EQ(got, "root\n");
  console.Close();
  EXPECT_THROW(console.Send("x"), LabError);
  EXPECT_FALSE(console.WaitFor("anything", 1000));  // closed: returns at once
}

TEST_F(SerialConsoleTest, BadInputsAreLabErrorsNamingTheResource) {
  auto expect_error = [&](const v1::SerialConsole& config, const fs::path& log,
                          const std::string& prefix) {
    const Clock::time_point start = Clock::now();
    try {
      SerialConsole console(config, log);
      ADD_FAILURE() << "no error, expected " << prefix;
    } catch (const LabError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
    }
    EXPECT_LT(MsSince(start), 1000);
  };
  v1::SerialConsole missing = Config();
  missing.set_device("/dev/ttyUSB-dmahil-missing");
  expect_error(missing, log_, "/dev/ttyUSB-dmahil-missing: cannot open: No such file");
  v1::SerialConsole bits = Config();
  bits.set_data_bits(9);
  expect_error(bits, log_, slave_path_ + ": data_bits 9");
  v1::SerialConsole stop = Config();
  stop.set_stop_bits(3);
  expect_error(stop, log_, slave_path_ + ": stop_bits 3");
  expect_error(Config(), "/proc/dmahil-no-such-dir/console.log",
               "/proc/dmahil-no-such-dir/console.log: cannot open the console log");

  SerialConsole console(Config(), log_);
  EXPECT_THROW(console.WaitFor("(unclosed", 100), LabError);
  v1::SerialConsole no_ready = Config();
  no_ready.clear_agent_ready();
  console.Close();
  SerialConsole console2(no_ready, log_);
  EXPECT_THROW(console2.WaitForAgentReady(100), LabError);
}

}  // namespace
}  // namespace dmahil::lab
