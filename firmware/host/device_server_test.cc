#include "firmware/host/device_server.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/framing.h"
#include "common/pattern.h"
#include "dmahil/v1/device.pb.h"
#include "firmware/host/ram_port.h"

namespace dmahil::device_host {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;

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

  // Whether bytes (or the end of the stream) arrive within `wait`.
  bool WaitReadable(milliseconds wait) {
    pollfd p{socket_.native_handle(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(wait.count())) == 1;
  }
  // The next frame, or nullopt if none starts to arrive within `wait` (or the stream ends).
  std::optional<v1::DeviceResponse> ResponseWithin(milliseconds wait = milliseconds(5000)) {
    if (!WaitReadable(wait)) return std::nullopt;
    v1::DeviceResponse resp;
    try {
      framing::ReadFrame(socket_, resp);
    } catch (const framing::FramingError& e) {
      ADD_FAILURE() << "no response frame: " << e.what();
      return std::nullopt;
    }
    return resp;
  }
  // Whether the server closes the stream within `wait` (with no frame before the end).
  bool ClosedWithin(milliseconds wait = milliseconds(5000)) {
    return WaitReadable(wait) && NextReadError().has_value();
  }

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

// Whether `text` contains `part` (says both when not).
::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" does not contain \"" << part << "\"";
}

// Polls `done` until it holds or 5 s have passed; returns its last value.
bool WaitFor(const std::function<bool()>& done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// The process's resident set (bytes), from /proc/self/statm.
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t total_pages = 0;
  size_t resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

// A header announcing `len` payload bytes.
std::string Header(uint32_t len) {
  std::string h(framing::kHeaderBytes, '\0');
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<char>(len >> (8 * i));
  return h;
}

v1::DeviceRequest InfoRequest(uint64_t tag) {
  v1::DeviceRequest req;
  req.set_tag(tag);
  req.mutable_info();
  return req;
}

std::unique_ptr<DeviceServer> StartServer(firmware::MemoryPort& mem,
                                          const DeviceServerOptions& options) {
  auto server = std::make_unique<DeviceServer>(
      mem, 0, firmware::EngineInfo{"dmahil-virtual-engine", firmware::kMaxDataBytes, 64},
      "127.0.0.1", options);
  server->Start();
  return server;
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

TEST_F(DeviceServerTest, OversizeFrameIsAnsweredThenClosesOnlyThatConnection) {
  RawClient bad(server.port());
  bad.SendRaw(std::string("\xff\xff\xff\x7f", 4));
  const std::optional<v1::DeviceResponse> resp = bad.ResponseWithin();
  ASSERT_TRUE(resp.has_value()) << "an oversize length prefix must be answered";
  EXPECT_EQ(resp->status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(resp->tag(), 0u);
  EXPECT_TRUE(Contains(resp->message(), "2147483647"));  // the announced length
  EXPECT_TRUE(Contains(resp->message(), "16777216"));    // the limit
  EXPECT_TRUE(bad.ClosedWithin());

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
  EXPECT_EQ(resp.tag(), 0u);
  EXPECT_FALSE(resp.message().empty());
  EXPECT_TRUE(Contains(resp.message(), "not a valid"));
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

TEST_F(DeviceServerTest, LargeRequestArrivingInPiecesIsServed) {
  RawClient c(server.port());
  std::string data(firmware::kMaxDataBytes, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4096);
  v1::DeviceRequest w;
  w.set_tag(21);
  w.mutable_write()->set_bus_addr(kBase);
  w.mutable_write()->set_data(data);
  const std::string frame = framing::EncodeFrame(w);
  // Pieces that straddle the header and the server's 64 KiB reads.
  const size_t pieces[] = {1, 2, 3, 1000, framing::kReadChunkBytes, 99'999};
  size_t off = 0;
  for (size_t i = 0; off < frame.size(); ++i) {
    const size_t n = std::min(pieces[i % std::size(pieces)], frame.size() - off);
    c.SendRaw(std::string_view(frame).substr(off, n));
    off += n;
  }
  const std::optional<v1::DeviceResponse> wrote = c.ResponseWithin();
  ASSERT_TRUE(wrote.has_value());
  EXPECT_EQ(wrote->tag(), 21u);
  EXPECT_EQ(wrote->status(), v1::DEVICE_OK) << wrote->message();

  v1::DeviceRequest r;
  r.set_tag(22);
  r.mutable_read()->set_bus_addr(kBase);
  r.mutable_read()->set_length(static_cast<uint32_t>(data.size()));
  const v1::DeviceResponse read = c.Call(r);
  EXPECT_EQ(read.status(), v1::DEVICE_OK);
  EXPECT_TRUE(read.data() == data);
  // Between frames a connection holds no payload or response buffer.
  EXPECT_TRUE(WaitFor([&] { return server.buffered_bytes() == 0; })) << server.buffered_bytes();
}

// Audit: a header announcing 16 MiB made the server reserve 16 MiB before any payload byte.
TEST_F(DeviceServerTest, HeadersAnnouncingTheMaximumCostOnlyWhatArrives) {
  constexpr size_t kClients = kDefaultMaxConnections;
  constexpr size_t kSent = 1000;  // payload bytes each client sends after its header
  const size_t rss_before = ResidentBytes();
  std::vector<std::unique_ptr<RawClient>> clients;
  for (size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<RawClient>(server.port()));
    clients.back()->SendRaw(Header(framing::kMaxFramePayload) + std::string(kSent, 'x'));
  }
  // Every connection has read its header and is reading its payload (into a buffer of
  // one read, 64 KiB, at least).
  ASSERT_TRUE(WaitFor([&] {
    return server.connections() == kClients &&
           server.buffered_bytes() >= kClients * framing::kReadChunkBytes;
  })) << server.connections()
      << " connections, " << server.buffered_bytes() << " bytes";
  std::this_thread::sleep_for(milliseconds(100));  // time to (wrongly) reserve more
  EXPECT_LE(server.buffered_bytes(), kClients * (kSent + framing::kReadChunkBytes));
  // Reserving (and zeroing) what the headers announce would add 8 x 16 MiB = 128 MiB.
  const size_t rss_after = ResidentBytes();
  EXPECT_LT(rss_after, rss_before + kClients * framing::kMaxFramePayload / 4)
      << "RSS grew from " << rss_before << " to " << rss_after << " bytes";

  clients.clear();
  EXPECT_TRUE(WaitFor([&] { return server.connections() == 0 && server.buffered_bytes() == 0; }))
      << server.connections() << " connections, " << server.buffered_bytes() << " bytes";
}

TEST(DeviceServerLimits, ConnectionOverTheLimitIsRefusedUntilASlotFrees) {
  firmware::RamPort mem{kBase, kWindow};
  DeviceServerOptions options;
  options.max_connections = 2;
  const auto server = StartServer(mem, options);
  auto a = std::make_unique<RawClient>(server->port());
  RawClient b(server->port());
  ASSERT_EQ(a->Call(InfoRequest(1)).status(), v1::DEVICE_OK);
  ASSERT_EQ(b.Call(InfoRequest(2)).status(), v1::DEVICE_OK);
  EXPECT_EQ(server->connections(), 2u);

  RawClient c(server->port());
  const std::optional<v1::DeviceResponse> refusal = c.ResponseWithin();
  ASSERT_TRUE(refusal.has_value()) << "a connection over the limit must be told why";
  EXPECT_EQ(refusal->status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(refusal->tag(), 0u);
  EXPECT_TRUE(Contains(refusal->message(), "has 2 connections already"));
  EXPECT_TRUE(Contains(refusal->message(), "the limit is 2"));
  EXPECT_TRUE(c.ClosedWithin());
  EXPECT_EQ(server->connections(), 2u);  // the refused one never held a slot

  a.reset();  // a hangs up: its slot frees
  ASSERT_TRUE(WaitFor([&] { return server->connections() == 1; })) << server->connections();
  RawClient d(server->port());
  const v1::DeviceResponse resp = d.Call(InfoRequest(4));
  EXPECT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.tag(), 4u);
  EXPECT_EQ(b.Call(InfoRequest(5)).tag(), 5u);  // b was not disturbed
}

TEST(DeviceServerLimits, IdleConnectionGivesUpItsSlotOnlyToANewOne) {
  firmware::RamPort mem{kBase, kWindow};
  DeviceServerOptions options;
  options.max_connections = 1;
  options.idle_timeout = milliseconds(1000);
  const auto server = StartServer(mem, options);
  RawClient a(server->port());
  ASSERT_EQ(a.Call(InfoRequest(1)).status(), v1::DEVICE_OK);
  {  // a has not been idle for 1 s yet: the newcomer is refused
    RawClient b(server->port());
    const std::optional<v1::DeviceResponse> refusal = b.ResponseWithin();
    ASSERT_TRUE(refusal.has_value());
    EXPECT_TRUE(Contains(refusal->message(), "the limit is 1"));
  }
  // Idle past the limit with nobody waiting: still served.
  std::this_thread::sleep_for(milliseconds(1200));
  ASSERT_EQ(a.Call(InfoRequest(2)).status(), v1::DEVICE_OK);

  std::this_thread::sleep_for(milliseconds(1200));
  RawClient c(server->port());
  const std::optional<v1::DeviceResponse> bye = a.ResponseWithin();
  ASSERT_TRUE(bye.has_value()) << "an evicted connection must be told why";
  EXPECT_EQ(bye->status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(bye->tag(), 0u);
  EXPECT_TRUE(Contains(bye->message(), "idle"));
  EXPECT_TRUE(Contains(bye->message(), "the idle limit is 1000 ms"));
  EXPECT_TRUE(a.ClosedWithin());
  const v1::DeviceResponse resp = c.Call(InfoRequest(3));
  EXPECT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.tag(), 3u);
}

TEST(DeviceServerLimits, FrameStalledPastItsDeadlineIsClosedAndFreesItsSlot) {
  firmware::RamPort mem{kBase, kWindow};
  DeviceServerOptions options;
  options.max_connections = 1;
  options.frame_timeout = milliseconds(300);
  const auto server = StartServer(mem, options);
  {
    RawClient slow(server->port());
    const auto start = std::chrono::steady_clock::now();
    slow.SendRaw(Header(1000) + std::string(10, 'x'));  // then nothing
    const std::optional<v1::DeviceResponse> resp = slow.ResponseWithin();
    const auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(resp.has_value()) << "a stalled frame must be answered at its deadline";
    EXPECT_GE(waited, milliseconds(300));
    EXPECT_EQ(resp->status(), v1::DEVICE_BAD_REQUEST);
    EXPECT_EQ(resp->tag(), 0u);
    EXPECT_TRUE(Contains(resp->message(), "not complete 300 ms after its first byte"));
    EXPECT_TRUE(Contains(resp->message(), "10 of 1000 payload bytes"));
    EXPECT_TRUE(slow.ClosedWithin());
    EXPECT_TRUE(WaitFor([&] { return server->connections() == 0; })) << server->connections();
    EXPECT_TRUE(WaitFor([&] { return server->buffered_bytes() == 0; })) << server->buffered_bytes();
  }
  {
    RawClient slow(server->port());  // the slot is free again
    slow.SendRaw(Header(8).substr(0, 2));
    const std::optional<v1::DeviceResponse> resp = slow.ResponseWithin();
    ASSERT_TRUE(resp.has_value());
    EXPECT_TRUE(Contains(resp->message(), "2 of 4 header bytes"));
    EXPECT_TRUE(slow.ClosedWithin());
  }
  ASSERT_TRUE(WaitFor([&] { return server->connections() == 0; })) << server->connections();
  RawClient next(server->port());
  EXPECT_EQ(next.Call(InfoRequest(7)).status(), v1::DEVICE_OK);
}

TEST(DeviceServerLimits, DeadlineCountsPerFrameNotPerConnection) {
  firmware::RamPort mem{kBase, kWindow};
  DeviceServerOptions options;
  options.frame_timeout = milliseconds(600);
  const auto server = StartServer(mem, options);
  RawClient c(server->port());
  for (uint64_t tag = 1; tag <= 3; ++tag) {  // 3 x 250 ms: more than one deadline in all
    const std::string frame = framing::EncodeFrame(InfoRequest(tag));
    c.SendRaw(frame.substr(0, 2));
    std::this_thread::sleep_for(milliseconds(250));
    c.SendRaw(frame.substr(2));
    const std::optional<v1::DeviceResponse> resp = c.ResponseWithin();
    ASSERT_TRUE(resp.has_value());
    EXPECT_EQ(resp->status(), v1::DEVICE_OK) << resp->message();
    EXPECT_EQ(resp->tag(), tag);
  }
  std::this_thread::sleep_for(milliseconds(700));  // idle between frames is not limited
  EXPECT_EQ(c.Call(InfoRequest(4)).status(), v1::DEVICE_OK);
}

TEST(DeviceServerLimits, InvalidOptionsAreRefused) {
  firmware::RamPort mem{kBase, kWindow};
  const firmware::EngineInfo info{"x", firmware::kMaxDataBytes, 64};
  DeviceServerOptions none;
  none.max_connections = 0;
  EXPECT_THROW(DeviceServer(mem, 0, info, "127.0.0.1", none), std::invalid_argument);
  DeviceServerOptions no_time;
  no_time.frame_timeout = milliseconds(0);
  EXPECT_THROW(DeviceServer(mem, 0, info, "127.0.0.1", no_time), std::invalid_argument);
}

TEST(DeviceServerLifecycle, StopWithoutStart) {
  firmware::RamPort mem(0, 4096);
  DeviceServer server(mem);
  EXPECT_NE(server.port(), 0);
  server.Stop();
}

}  // namespace
}  // namespace dmahil::device_host
