#include "firmware/host/device_server.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <optional>
#include <string>

#include "common/framing.h"
#include "common/pattern.h"
#include "dmahil/v1/device.pb.h"
#include "firmware/host/ram_port.h"

namespace dmahil::device_host {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr uint64_t kBase = 0x8000'0000;
constexpr size_t kWindow = 1 << 20;

// A bare protocol client: one connection, synchronous framing.
class RawClient {
 public:
  explicit RawClient(uint16_t port) : socket_(io_) {
    socket_.connect(tcp::endpoint(asio::ip::address_v4::loopback(), port));
  }
  v1::DeviceResponse Call(const v1::DeviceRequest& req) {
    framing::WriteFrame(socket_, req);
    v1::DeviceResponse resp;
    framing::ReadFrame(socket_, resp);
    return resp;
  }
  void SendRaw(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // The kind of FramingError the next read gives, or nullopt if a frame arrives.
  std::optional<framing::FramingError::Kind> NextReadError() {
    v1::DeviceResponse resp;
    try {
      framing::ReadFrame(socket_, resp);
    } catch (const framing::FramingError& e) {
      return e.kind();
    }
    return std::nullopt;
  }
  tcp::socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  tcp::socket socket_;
};

v1::PatternSpec Spec(uint32_t generation) {
  v1::PatternSpec s;
  s.set_seed(99);
  s.set_buffer_id(1);
  s.set_generation(generation);
  s.set_line_size(64);
  return s;
}

class DeviceServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server.Start(); }

  firmware::RamPort mem{kBase, kWindow};
  DeviceServer server{mem};
};

TEST_F(DeviceServerTest, ListensOnAnEphemeralPort) { EXPECT_NE(server.port(), 0); }

TEST_F(DeviceServerTest, InfoRoundTrip) {
  RawClient c(server.port());
  v1::DeviceRequest req;
  req.set_tag(1);
  req.mutable_info();
  const v1::DeviceResponse resp = c.Call(req);
  EXPECT_EQ(resp.tag(), 1u);
  EXPECT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.info().engine(), "dmahil-virtual-engine");
  EXPECT_EQ(resp.info().max_transfer(), 1u << 20);
  EXPECT_EQ(resp.info().address_bits(), 64u);
}

TEST_F(DeviceServerTest, WriteThenReadRoundTrip) {
  RawClient c(server.port());
  v1::DeviceRequest w;
  w.set_tag(2);
  w.mutable_write()->set_bus_addr(kBase + 0x100);
  w.mutable_write()->set_data("hello, dma");
  EXPECT_EQ(c.Call(w).status(), v1::DEVICE_OK);

  v1::DeviceRequest r;
  r.set_tag(3);
  r.mutable_read()->set_bus_addr(kBase + 0x100);
  r.mutable_read()->set_length(10);
  const v1::DeviceResponse resp = c.Call(r);
  EXPECT_EQ(resp.tag(), 3u);
  EXPECT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.data(), "hello, dma");
}

TEST_F(DeviceServerTest, FillThenCheckFindsAStaleLine) {
  RawClient c(server.port());
  v1::DeviceRequest fill;
  fill.mutable_fill()->set_bus_addr(kBase);
  fill.mutable_fill()->set_length(64 * 1024);
  *fill.mutable_fill()->mutable_pattern() = Spec(1);
  ASSERT_EQ(c.Call(fill).status(), v1::DEVICE_OK);

  // Generation 2 everywhere, except line 17 which keeps generation 1.
  *fill.mutable_fill()->mutable_pattern() = Spec(2);
  ASSERT_EQ(c.Call(fill).status(), v1::DEVICE_OK);
  fill.mutable_fill()->set_bus_addr(kBase + 17 * 64);
  fill.mutable_fill()->set_length(64);
  *fill.mutable_fill()->mutable_pattern() = Spec(1);
  fill.mutable_fill()->mutable_pattern()->set_first_line(17);
  ASSERT_EQ(c.Call(fill).status(), v1::DEVICE_OK);

  v1::DeviceRequest check;
  check.set_tag(4);
  check.mutable_check()->set_bus_addr(kBase);
  check.mutable_check()->set_length(64 * 1024);
  *check.mutable_check()->mutable_pattern() = Spec(2);
  const v1::DeviceResponse resp = c.Call(check);
  ASSERT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.check().lines_checked(), 1024u);
  EXPECT_EQ(resp.check().lines_ok(), 1023u);
  ASSERT_EQ(resp.check().mismatches_size(), 1);
  EXPECT_EQ(resp.check().mismatches(0).line(), 17u);
  EXPECT_EQ(resp.check().mismatches(0).cls(), v1::LINE_STALE);
  EXPECT_EQ(resp.check().mismatches(0).found_generation(), 1u);
}

TEST_F(DeviceServerTest, BusErrorAndBadRequestResponses) {
  RawClient c(server.port());
  v1::DeviceRequest read;
  read.mutable_read()->set_bus_addr(kBase + kWindow);
  read.mutable_read()->set_length(16);
  v1::DeviceResponse resp = c.Call(read);
  EXPECT_EQ(resp.status(), v1::DEVICE_BUS_ERROR);
  EXPECT_EQ(resp.fault_addr(), kBase + kWindow);

  v1::DeviceRequest fill;
  fill.mutable_fill()->set_bus_addr(kBase);
  fill.mutable_fill()->set_length(100);
  *fill.mutable_fill()->mutable_pattern() = Spec(1);
  resp = c.Call(fill);
  EXPECT_EQ(resp.status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(resp.message(), "fill length 100 is not a multiple of line size 64");

  resp = c.Call(v1::DeviceRequest());  // no op
  EXPECT_EQ(resp.status(), v1::DEVICE_BAD_REQUEST);
}

TEST_F(DeviceServerTest, OversizeFrameClosesOnlyThatConnection) {
  RawClient bad(server.port());
  bad.SendRaw(std::string("\xff\xff\xff\x7f", 4));
  const auto err = bad.NextReadError();
  ASSERT_TRUE(err.has_value());
  EXPECT_TRUE(*err == framing::FramingError::Kind::kEof ||
              *err == framing::FramingError::Kind::kIo);

  RawClient good(server.port());
  v1::DeviceRequest req;
  req.mutable_info();
  EXPECT_EQ(good.Call(req).status(), v1::DEVICE_OK);
}

TEST_F(DeviceServerTest, GarbagePayloadIsAnsweredThenClosed) {
  RawClient bad(server.port());
  bad.SendRaw(std::string("\x03\x00\x00\x00\x0f\xff\xff", 7));
  v1::DeviceResponse resp;
  framing::ReadFrame(bad.socket(), resp);
  EXPECT_EQ(resp.status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_NE(resp.message().find("not a valid"), std::string::npos);
  EXPECT_EQ(bad.NextReadError(), framing::FramingError::Kind::kEof);

  RawClient good(server.port());
  v1::DeviceRequest req;
  req.mutable_info();
  EXPECT_EQ(good.Call(req).status(), v1::DEVICE_OK);
}

TEST_F(DeviceServerTest, SurvivesAClientVanishingMidFrame) {
  {
    RawClient gone(server.port());
    gone.SendRaw(std::string("\x40\x00\x00\x00\x08", 5));  // 64-byte frame, 1 byte sent
  }
  RawClient good(server.port());
  v1::DeviceRequest req;
  req.mutable_info();
  EXPECT_EQ(good.Call(req).status(), v1::DEVICE_OK);
}

TEST_F(DeviceServerTest, ServesTwoConnectionsAtOnce) {
  RawClient a(server.port());
  RawClient b(server.port());
  v1::DeviceRequest req;
  req.mutable_info();
  req.set_tag(10);
  EXPECT_EQ(b.Call(req).tag(), 10u);
  req.set_tag(11);
  EXPECT_EQ(a.Call(req).tag(), 11u);
}

TEST_F(DeviceServerTest, StopClosesConnections) {
  RawClient c(server.port());
  v1::DeviceRequest req;
  req.mutable_info();
  ASSERT_EQ(c.Call(req).status(), v1::DEVICE_OK);
  server.Stop();
  server.Stop();  // idempotent
  const auto err = c.NextReadError();
  ASSERT_TRUE(err.has_value());
}

TEST(DeviceServerLifecycle, StopWithoutStart) {
  firmware::RamPort mem(0, 4096);
  DeviceServer server(mem);
  EXPECT_NE(server.port(), 0);
  server.Stop();
}

}  // namespace
}  // namespace dmahil::device_host
