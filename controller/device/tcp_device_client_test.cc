#include "controller/device/tcp_device_client.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include "controller/device/device_test_support.h"
#include "firmware/host/device_server.h"
#include "firmware/host/ram_port.h"

namespace dmahil::controller {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr uint64_t kBase = 0x8000'0000;

using device_testing::ExpectDeviceError;
using device_testing::Spec;

class TcpDeviceClientTest : public ::testing::Test {
 protected:
  void SetUp() override { server.Start(); }
  firmware::RamPort mem{kBase, 1 << 20};
  device_host::DeviceServer server{mem};
};

TEST_F(TcpDeviceClientTest, InfoWriteRead) {
  TcpDeviceClient dev("127.0.0.1", server.port(), 2000);
  EXPECT_EQ(dev.endpoint(), "127.0.0.1:" + std::to_string(server.port()));
  const v1::DeviceResponse info = dev.Info();
  EXPECT_EQ(info.status(), v1::DEVICE_OK);
  EXPECT_EQ(info.info().engine(), "dmahil-virtual-engine");
  EXPECT_NE(info.tag(), 0u);

  EXPECT_EQ(dev.Write(kBase + 0x40, "abcdef").status(), v1::DEVICE_OK);
  const v1::DeviceResponse rd = dev.Read(kBase + 0x40, 6);
  EXPECT_EQ(rd.status(), v1::DEVICE_OK);
  EXPECT_EQ(rd.data(), "abcdef");
}

TEST_F(TcpDeviceClientTest, FillCheckRoundTrip) {
  TcpDeviceClient dev("localhost", server.port(), 2000);
  ASSERT_EQ(dev.Fill(kBase, 256 * 1024, Spec()).status(), v1::DEVICE_OK);
  mem.Poke(kBase + 10 * 64, std::vector<uint8_t>(64, 0));
  mem.Poke(kBase + 20 * 64, std::vector<uint8_t>(64, 0));
  const v1::DeviceResponse resp = dev.Check(kBase, 256 * 1024, Spec(), 1);
  ASSERT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.check().lines_checked(), 4096u);
  EXPECT_EQ(resp.check().lines_ok(), 4094u);
  EXPECT_EQ(resp.check().mismatches_total(), 2u);
  ASSERT_EQ(resp.check().mismatches_size(), 1);
  EXPECT_EQ(resp.check().mismatches(0).line(), 10u);
  EXPECT_EQ(resp.check().mismatches(0).cls(), v1::LINE_ZERO);
}

TEST_F(TcpDeviceClientTest, DeviceRefusalsAreResponsesNotExceptions) {
  TcpDeviceClient dev("127.0.0.1", server.port(), 2000);
  const v1::DeviceResponse resp = dev.Fill(kBase, 100, Spec());
  EXPECT_EQ(resp.status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(resp.message(), "fill length 100 is not a multiple of line size 64");
  EXPECT_EQ(dev.Read(0x10, 4).status(), v1::DEVICE_BUS_ERROR);
  EXPECT_EQ(dev.Info().status(), v1::DEVICE_OK);  // the connection is still good
}

TEST_F(TcpDeviceClientTest, CallerTagIsKept) {
  TcpDeviceClient dev("127.0.0.1", server.port(), 2000);
  v1::DeviceRequest req;
  req.set_tag(0xABCDEF);
  req.mutable_info();
  EXPECT_EQ(dev.Transact(req).tag(), 0xABCDEFu);
}

TEST_F(TcpDeviceClientTest, ReconnectsAfterTheServerDropsTheConnection) {
  const uint16_t port = server.port();
  TcpDeviceClient dev("127.0.0.1", port, 2000);
  ASSERT_EQ(dev.Info().status(), v1::DEVICE_OK);
  server.Stop();
  ExpectDeviceError([&] { dev.Info(); }, {"device 127.0.0.1:" + std::to_string(port)});
  ExpectDeviceError([&] { dev.Info(); }, {"connecting"});  // nobody listens any more

  device_host::DeviceServer again(mem, port);
  again.Start();
  EXPECT_EQ(dev.Info().status(), v1::DEVICE_OK);
}

// A free port: bound, then released.
uint16_t FreePort() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  return a.local_endpoint().port();
}

TEST(TcpDeviceClientErrors, ConnectFailureNamesTheEndpoint) {
  const uint16_t port = FreePort();
  ExpectDeviceError([&] { TcpDeviceClient dev("127.0.0.1", port, 1000); },
                    {"device 127.0.0.1:" + std::to_string(port), "connecting"});
}

TEST(TcpDeviceClientErrors, SilentDeviceTimesOut) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const uint16_t port = acceptor.local_endpoint().port();
  TcpDeviceClient dev("127.0.0.1", port, 200);  // connects into the backlog
  ExpectDeviceError([&] { dev.Info(); }, {"127.0.0.1:", "timed out after 200 ms"});
}

TEST(TcpDeviceClientErrors, DeviceHangingUpIsAnError) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  const uint16_t port = acceptor.local_endpoint().port();
  std::thread hangup([&] {
    tcp::socket s(io);
    acceptor.accept(s);
    s.close();
  });
  TcpDeviceClient dev("127.0.0.1", port, 2000);
  hangup.join();
  ExpectDeviceError([&] { dev.Info(); }, {"127.0.0.1:"});
}

}  // namespace
}  // namespace dmahil::controller
