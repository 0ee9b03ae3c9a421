// PduPowerSwitch against a real pdudaemon (Debian's /usr/sbin/pdudaemon, or
// $DMAHIL_PDUDAEMON) on a free loopback port, with a `localcmdline` PDU whose commands
// append "on <port>"/"off <port>" to a file; plus the error paths: an unknown PDU, nothing
// listening, a listener that never answers, bad URLs.
#include "controller/lab/pdu_power.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controller/lab/lab_error.h"
#include "controller/lab/power.h"

extern char** environ;

namespace dmahil::lab {
namespace {

namespace fs = std::filesystem;
namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

long MsSince(Clock::time_point start) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

// A loopback port nothing listens on (bound, then released).
uint16_t FreePort() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

bool Accepts(uint16_t port) {
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string PdudaemonPath() {
  if (const char* env = std::getenv("DMAHIL_PDUDAEMON")) return env;
  return "/usr/sbin/pdudaemon";
}

class PdudaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dmahil-pdu-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    outlets_ = dir_ / "outlets.txt";
    port_ = FreePort();
    const fs::path conf = dir_ / "pdudaemon.conf";
    {
      std::ofstream out(conf);
      out << R"({"daemon": {"hostname": "127.0.0.1", "port": )" << port_
          << R"(, "listener": "http", "logging_level": "DEBUG"},
  "pdus": {"lab-pdu": {"driver": "localcmdline",
    "cmd_on": "echo on %s >> ')"
          << outlets_.string() << R"('",
    "cmd_off": "echo off %s >> ')"
          << outlets_.string() << R"('"}}})";
    }
    const std::string exe = PdudaemonPath();
    ASSERT_TRUE(fs::exists(exe)) << exe << " is missing: install Debian's pdudaemon";
    const std::string log = (dir_ / "pdudaemon.log").string();
    std::vector<std::string> args = {exe, "--conf", conf.string(), "--logfile", log};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawn(&pid_, exe.c_str(), nullptr, nullptr, argv.data(), environ), 0);
    // Wait (bounded) for the listener; fail early if pdudaemon exits.
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
    while (!Accepts(port_)) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "pdudaemon exited (status " << status << "): " << ReadFile(log);
      }
      ASSERT_LT(Clock::now(), deadline) << "pdudaemon did not listen: " << ReadFile(log);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      const Clock::time_point deadline = Clock::now() + std::chrono::seconds(5);
      int status = 0;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  v1::PduPower Pdu(const std::string& hostname = "lab-pdu", uint32_t outlet = 3) const {
    v1::PduPower pdu;
    pdu.set_url("http://127.0.0.1:" + std::to_string(port_));
    pdu.set_hostname(hostname);
    pdu.set_port(outlet);
    return pdu;
  }

  // Polls the outlet file (pdudaemon may run jobs after answering) until it has `n` lines
  // or 10 s passed; returns its lines.
  std::vector<std::string> OutletLines(size_t n) const {
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
    std::vector<std::string> lines;
    for (;;) {
      lines.clear();
      std::istringstream in(ReadFile(outlets_));
      for (std::string l; std::getline(in, l);) lines.push_back(l);
      if (lines.size() >= n || Clock::now() > deadline) return lines;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  fs::path dir_;
  fs::path outlets_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(PdudaemonTest, OnAndOffReachTheOutlet) {
  const std::unique_ptr<PowerSwitch> sw = [&] {
    v1::PowerControl control;
    *control.mutable_pdu() = Pdu();
    return MakePowerSwitch(control);
  }();
  EXPECT_EQ(sw->Describe(),
            "pdudaemon http://127.0.0.1:" + std::to_string(port_) + " pdu lab-pdu port 3");
  sw->On();
  EXPECT_EQ(OutletLines(1), std::vector<std::string>({"on 3"}));
  sw->Off();
  EXPECT_EQ(OutletLines(2), std::vector<std::string>({"on 3", "off 3"}));
}

TEST_F(PdudaemonTest, CycleIsARebootWithTheDelay) {
  v1::PduPower pdu = Pdu("lab-pdu", 5);
  pdu.set_delay_s(1);
  PduPowerSwitch sw(pdu);
  EXPECT_EQ(sw.Target("reboot"), "/power/control/reboot?hostname=lab-pdu&port=5&delay=1");
  sw.Cycle();
  EXPECT_EQ(OutletLines(2), std::vector<std::string>({"off 5", "on 5"}));
  sw.Reset();  // no reset line on a PDU: the same reboot
  EXPECT_EQ(OutletLines(4), std::vector<std::string>({"off 5", "on 5", "off 5", "on 5"}));
}

TEST_F(PdudaemonTest, UnknownPduIsALabErrorWithStatusAndBody) {
  PduPowerSwitch sw(Pdu("no-such-pdu", 3));
  const Clock::time_point start = Clock::now();
  try {
    sw.On();
    FAIL() << "no error";
  } catch (const LabError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("pdudaemon http://127.0.0.1:" + std::to_string(port_) +
                             " pdu no-such-pdu port 3: on: ",
                         0),
              0u)
        << what;
    EXPECT_NE(what.find("HTTP 500"), std::string::npos) << what;
    EXPECT_NE(what.find("Invalid request"), std::string::npos) << what;
  }
  EXPECT_LT(MsSince(start), 3000);
  EXPECT_TRUE(OutletLines(0).empty());
}

TEST(PduPowerSwitchTest, NothingListeningIsAQuickLabError) {
  v1::PduPower pdu;
  pdu.set_url("http://127.0.0.1:" + std::to_string(FreePort()));
  pdu.set_hostname("lab-pdu");
  pdu.set_port(3);
  PduPowerSwitch sw(pdu);
  const Clock::time_point start = Clock::now();
  try {
    sw.Off();
    FAIL() << "no error";
  } catch (const LabError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(sw.Describe() + ": off: connecting to 127.0.0.1:", 0), 0u) << what;
    EXPECT_NE(what.find("refused"), std::string::npos) << what;
  }
  EXPECT_LT(MsSince(start), 1000);
}

TEST(PduPowerSwitchTest, AListenerThatNeverAnswersTimesOut) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  // The kernel completes the handshake from the backlog: connect succeeds, no answer comes.
  v1::PduPower pdu;
  pdu.set_url("http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()));
  pdu.set_hostname("lab-pdu");
  pdu.set_port(1);
  PduPowerSwitch sw(pdu, /*timeout_ms=*/300);
  const Clock::time_point start = Clock::now();
  try {
    sw.On();
    FAIL() << "no error";
  } catch (const LabError& e) {
    EXPECT_NE(std::string(e.what()).find("timed out after 300 ms"), std::string::npos) << e.what();
  }
  const long ms = MsSince(start);
  EXPECT_GE(ms, 300);
  EXPECT_LT(ms, 2000);
}

TEST(PduPowerSwitchTest, UrlsAndTargets) {
  v1::PduPower pdu;
  pdu.set_hostname("pdu a&b");
  pdu.set_port(7);
  for (const char* bad : {"", "https://127.0.0.1:16421", "127.0.0.1:16421", "http://",
                          "http://host:0", "http://host:70000", "http://host:x", "http://[::1"}) {
    pdu.set_url(bad);
    EXPECT_THROW(PduPowerSwitch{pdu}, LabError) << bad;
  }
  pdu.set_url("http://[::1]:16421/pdu/");
  const PduPowerSwitch sw(pdu);
  EXPECT_EQ(sw.Target("on"), "/pdu/power/control/on?hostname=pdu%20a%26b&port=7");
  EXPECT_EQ(sw.Target("reboot"), "/pdu/power/control/reboot?hostname=pdu%20a%26b&port=7");
  pdu.set_hostname("");
  EXPECT_THROW(PduPowerSwitch{pdu}, LabError);
}

}  // namespace
}  // namespace dmahil::lab
