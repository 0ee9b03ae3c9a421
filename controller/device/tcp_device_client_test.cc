#include "controller/device/tcp_device_client.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "common/framing.h"
#include "common/largest_allocation_test_support.h"
#include "controller/device/device_test_support.h"
#include "firmware/host/device_server.h"
#include "firmware/host/ram_port.h"

namespace dmahil::controller {
namespace {

using dmahil::testing::LargestAllocation;

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

// A 1 MiB response arrives in many reads into a buffer that grows with them.
TEST_F(TcpDeviceClientTest, AMegabyteResponseIsReadWhole) {
  TcpDeviceClient dev("127.0.0.1", server.port(), 5000);
  std::string data(firmware::kMaxDataBytes, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
  ASSERT_EQ(dev.Write(kBase, data).status(), v1::DEVICE_OK);
  const v1::DeviceResponse rd = dev.Read(kBase, static_cast<uint32_t>(data.size()));
  ASSERT_EQ(rd.status(), v1::DEVICE_OK);
  EXPECT_TRUE(rd.data() == data);
  EXPECT_EQ(dev.Info().status(), v1::DEVICE_OK);  // the stream is still in step
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

// A device server that refuses: with max_connections 1 and one client holding the slot,
// a second client is answered with a tag-0 DEVICE_BAD_REQUEST naming the limit and closed.
class TcpDeviceClientRefusalTest : public ::testing::Test {
 protected:
  static device_host::DeviceServerOptions OneConnection() {
    device_host::DeviceServerOptions o;
    o.max_connections = 1;
    return o;
  }
  void SetUp() override { server.Start(); }
  // Waits (at most 2 s) until the server holds `n` connections.
  bool WaitForConnections(size_t n) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (server.connections() != n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  firmware::RamPort mem{kBase, 2 << 20};
  device_host::DeviceServer server{
      mem, 0, {"dmahil-virtual-engine", firmware::kMaxDataBytes, 64}, "127.0.0.1", OneConnection()};
};

// Audit: the refusal was reported as "response tag 0 does not match request tag 1".
TEST_F(TcpDeviceClientRefusalTest, AConnectionOverTheLimitFailsWithTheServersMessage) {
  auto holder = std::make_unique<TcpDeviceClient>("127.0.0.1", server.port(), 2000);
  ASSERT_EQ(holder->Info().status(), v1::DEVICE_OK);  // the server has taken it: slot full

  TcpDeviceClient dev("127.0.0.1", server.port(), 2000);
  try {
    dev.Info();
    ADD_FAILURE() << "no DeviceError";
  } catch (const DeviceError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("device 127.0.0.1:" + std::to_string(server.port()) +
                        ": the device server refused request tag 1 and closed the connection: "),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("the limit is 1"), std::string::npos) << what;
    EXPECT_EQ(what.find("does not match"), std::string::npos) << what;
  }

  // The slot comes free: the next call reconnects, as after any other failure.
  holder.reset();
  ASSERT_TRUE(WaitForConnections(0));
  const v1::DeviceResponse info = dev.Info();
  EXPECT_EQ(info.status(), v1::DEVICE_OK);
  EXPECT_EQ(info.tag(), 2u);
}

// A 1 MiB request still going out when the server refuses the connection: however far the
// send got before the reset, the error is the server's reason.
TEST_F(TcpDeviceClientRefusalTest, ALargeRequestOverTheLimitFailsWithTheServersMessage) {
  TcpDeviceClient holder("127.0.0.1", server.port(), 2000);
  ASSERT_EQ(holder.Info().status(), v1::DEVICE_OK);
  const std::string data(firmware::kMaxDataBytes, 'w');
  for (int i = 0; i < 5; ++i) {
    TcpDeviceClient dev("127.0.0.1", server.port(), 2000);
    ExpectDeviceError([&] { dev.Write(kBase, data); },
                      {"the device server refused request tag 1", "the limit is 1"});
  }
  EXPECT_EQ(mem.Peek(kBase, 1), std::vector<uint8_t>(1, 0));  // no write got through
}

// A one-connection fake device on loopback: `serve` gets the accepted socket.
class FakeDevice {
 public:
  explicit FakeDevice(std::function<void(tcp::socket&)> serve)
      : acceptor_(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        thread_([this, serve = std::move(serve)] {
          tcp::socket s(io_);
          boost::system::error_code ec;
          acceptor_.accept(s, ec);
          try {
            if (!ec) serve(s);
          } catch (const std::exception& e) {
            ADD_FAILURE() << "fake device: " << e.what();
          }
        }) {}
  ~FakeDevice() { Join(); }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// Audit: the client allocated the announced length (up to 16 MiB) before the payload came.
TEST(TcpDeviceClientErrors, AHeaderAnnouncing16MiBThenEofFailsWithoutReservingIt) {
  FakeDevice fake([](tcp::socket& s) {
    v1::DeviceRequest req;
    framing::ReadFrame(s, req);  // the whole request, so that the close is a clean FIN
    const std::string bytes = std::string("\x00\x00\x00\x01", 4) + "0123456789";  // 16 MiB
    asio::write(s, asio::buffer(bytes));
    s.close();
  });
  TcpDeviceClient dev("127.0.0.1", fake.port(), 2000);
  std::string what;
  size_t largest = 0;
  {
    LargestAllocation track;
    try {
      dev.Info();
    } catch (const DeviceError& e) {
      what = e.what();
    }
    largest = track.bytes();
  }
  fake.Join();
  EXPECT_NE(what.find("the device closed the connection while reading the response (10 of "
                      "16777216 payload bytes received)"),
            std::string::npos)
      << what;
  EXPECT_GT(largest, 0u);  // the tracking works
  EXPECT_LE(largest, framing::kReadChunkBytes) << "allocated " << largest << " for 10 bytes";
}

// The server refused the connection and reset it before the request went out: sending
// fails, and the refusal frame already received gives the reason.
TEST(TcpDeviceClientErrors, ARefusalReceivedBeforeASendFailsIsTheError) {
  FakeDevice fake([](tcp::socket& s) {
    v1::DeviceResponse refusal;
    refusal.set_status(v1::DEVICE_BAD_REQUEST);
    refusal.set_message("the device server has 1 connection already and the limit is 1");
    framing::WriteFrame(s, refusal);
    s.set_option(asio::socket_base::linger(true, 0));  // close with a reset
    s.close();
  });
  TcpDeviceClient dev("127.0.0.1", fake.port(), 2000);
  fake.Join();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the reset arrives
  ExpectDeviceError([&] { dev.Info(); },
                    {"the device server refused request tag 1 and closed the connection: the "
                     "device server has 1 connection already and the limit is 1"});
}

}  // namespace
}  // namespace dmahil::controller
