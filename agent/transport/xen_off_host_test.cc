// The real libxenvchan / libxenstore paths, run where they can only fail (the host: no
// /dev/xen): errors must name the call and the path, and the retry logic must time out
// or stop. Skipped inside a Xen domain, where these devices exist.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>

#include "agent/transport/vchan_channel.h"
#include "agent/transport/xen_domains.h"

namespace dmahil::agent::transport {
namespace {

using std::chrono::milliseconds;

TEST(AgentVchanRingBytes, OneGrantPerRingWhenALinuxPageHoldsSeveralGrants) {
  EXPECT_EQ(AgentVchanRingBytes(4096), kAgentVchanRingBytes);
  // a 64 KiB-page kernel: libxengnttab would mmap 16 grants as 64 KiB, gntdev wants 16 pages
  EXPECT_EQ(AgentVchanRingBytes(65536), 4096u);
}

bool OnXen() {
  return access("/dev/xen/evtchn", F_OK) == 0 || access("/dev/xen/xenbus", F_OK) == 0 ||
         access("/proc/xen/capabilities", F_OK) == 0;
}

#define SKIP_ON_XEN() \
  if (OnXen()) GTEST_SKIP() << "running on Xen: these tests expect /dev/xen to be missing"

std::string MessageOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const TransportError& e) {
    return e.what();
  }
  return "(no TransportError)";
}

TEST(XenOffHostTest, OwnDomainIdWithoutXenstoreSaysWhy) {
  SKIP_ON_XEN();
  const std::string m = MessageOf([] { OwnDomainId(); });
  EXPECT_NE(m.find("xs_open (xenstore) failed"), std::string::npos) << m;
  EXPECT_NE(m.find("/dev/xen/xenbus"), std::string::npos) << m;
}

TEST(XenOffHostTest, ListenNamesTheCallAndPath) {
  SKIP_ON_XEN();
  const std::string m = MessageOf([] { VchanChannel::Listen(0, kAgentVchanPath); });
  EXPECT_NE(m.find("libxenvchan_server_init"), std::string::npos) << m;
  EXPECT_NE(m.find("data/dmahil-agent"), std::string::npos) << m;
}

TEST(XenOffHostTest, ConnectNamesTheDomainAndPath) {
  SKIP_ON_XEN();
  const std::string path = GuestXenstorePath(3, kAgentVchanPath);
  EXPECT_EQ(path, "/local/domain/3/data/dmahil-agent");
  const std::string m = MessageOf([&] { VchanChannel::Connect(3, path); });
  EXPECT_NE(m.find("libxenvchan_client_init"), std::string::npos) << m;
  EXPECT_NE(m.find("domain 3"), std::string::npos) << m;
  EXPECT_NE(m.find(path), std::string::npos) << m;
}

TEST(XenOffHostTest, ConnectWithRetryGivesUpAfterTheTimeout) {
  SKIP_ON_XEN();
  const auto t0 = std::chrono::steady_clock::now();
  const std::string m = MessageOf([] {
    VchanChannel::ConnectWithRetry(3, "/local/domain/3/x", milliseconds(300), nullptr,
                                   milliseconds(50));
  });
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(m.find("gave up after 300 ms"), std::string::npos) << m;
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, milliseconds(3000));
}

TEST(XenOffHostTest, ConnectWithRetryReturnsNullWhenStopped) {
  SKIP_ON_XEN();
  StopSignal stop;
  stop.Set();
  EXPECT_EQ(VchanChannel::ConnectWithRetry(3, "/local/domain/3/x", milliseconds(10000), &stop),
            nullptr);
}

TEST(XenOffHostTest, FindDomainIdNamesXenstore) {
  SKIP_ON_XEN();
  const std::string m = MessageOf([] { FindDomainIdByName("domu"); });
  EXPECT_NE(m.find("xs_open"), std::string::npos) << m;
}

}  // namespace
}  // namespace dmahil::agent::transport
