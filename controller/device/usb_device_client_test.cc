#include "controller/device/usb_device_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "common/config.h"
#include "common/framing.h"
#include "common/problems.h"
#include "controller/device/device_test_support.h"
#include "controller/device/usb_fake_port.h"
#include "dmahil/v1/farm.pb.h"
#include "firmware/host/codec.h"
#include "firmware/host/ram_port.h"

namespace dmahil::controller {
namespace {

constexpr uint64_t kBase = 0x8000'0000;
constexpr size_t kMemBytes = 4u << 20;
const std::string kName = "usb 1d50:6170 serial FAKE";

using Clock = std::chrono::steady_clock;

using device_testing::ExpectDeviceError;
using device_testing::Spec;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

v1::DeviceRequest WriteRequest(uint64_t tag, uint64_t addr, std::string data) {
  v1::DeviceRequest req;
  req.set_tag(tag);
  req.mutable_write()->set_bus_addr(addr);
  req.mutable_write()->set_data(std::move(data));
  return req;
}

v1::DeviceRequest ReadRequest(uint64_t tag, uint64_t addr, uint32_t length) {
  v1::DeviceRequest req;
  req.set_tag(tag);
  req.mutable_read()->set_bus_addr(addr);
  req.mutable_read()->set_length(length);
  return req;
}

UsbClientOptions FastOptions() {
  UsbClientOptions o;
  o.timeout_ms = 2000;
  o.reopen_attempts = 4;
  o.reopen_backoff_ms = 10;
  o.reopen_backoff_max_ms = 40;
  return o;
}

class UsbDeviceClientTest : public ::testing::Test {
 protected:
  void Make(size_t out_mps = 512, size_t in_mps = 512, const UsbClientOptions& o = FastOptions()) {
    auto port = std::make_unique<FakeUsbPort>(mem, out_mps, in_mps);
    fake = port.get();
    dev = std::make_unique<UsbDeviceClient>(std::move(port), o);
  }
  void TearDown() override {
    if (fake == nullptr) return;
    for (const std::string& v : fake->violations()) ADD_FAILURE() << "framing rule broken: " << v;
  }

  // Data length of a Write (tag `tag`) whose request frame is exactly `frame_bytes`.
  static size_t WriteLengthForFrame(uint64_t tag, size_t frame_bytes) {
    for (size_t n = 1; n < frame_bytes; ++n) {
      if (framing::EncodeFrame(WriteRequest(tag, kBase, std::string(n, 'x'))).size() ==
          frame_bytes) {
        return n;
      }
    }
    ADD_FAILURE() << "no Write frame of " << frame_bytes << " bytes";
    return 1;
  }
  // Length of a Read (tag `tag`) whose response frame is exactly `frame_bytes`, as the
  // engine answers it.
  uint32_t ReadLengthForFrame(uint64_t tag, size_t frame_bytes) {
    firmware::CommandProcessor engine(mem);
    for (size_t n = frame_bytes > 64 ? frame_bytes - 64 : 1; n < frame_bytes; ++n) {
      const v1::DeviceResponse resp =
          device_host::Execute(engine, ReadRequest(tag, kBase, static_cast<uint32_t>(n)));
      if (framing::EncodeFrame(resp).size() == frame_bytes) return static_cast<uint32_t>(n);
    }
    ADD_FAILURE() << "no Read response frame of " << frame_bytes << " bytes";
    return 1;
  }

  firmware::RamPort mem{kBase, kMemBytes};
  std::unique_ptr<UsbDeviceClient> dev;
  FakeUsbPort* fake = nullptr;  // owned by dev
};

TEST_F(UsbDeviceClientTest, EveryOpRoundTrips) {
  Make();
  EXPECT_EQ(dev->name(), kName);
  const v1::DeviceResponse info = dev->Info();
  EXPECT_EQ(info.status(), v1::DEVICE_OK);
  EXPECT_EQ(info.info().engine(), "dmahil-usb-fake-engine");
  EXPECT_NE(info.tag(), 0u);

  EXPECT_EQ(dev->Write(kBase + 0x40, "abcdef").status(), v1::DEVICE_OK);
  EXPECT_EQ(mem.Peek(kBase + 0x40, 6), std::vector<uint8_t>({'a', 'b', 'c', 'd', 'e', 'f'}));
  const v1::DeviceResponse rd = dev->Read(kBase + 0x40, 6);
  EXPECT_EQ(rd.status(), v1::DEVICE_OK);
  EXPECT_EQ(rd.data(), "abcdef");

  ASSERT_EQ(dev->Fill(kBase, 256 * 1024, Spec()).status(), v1::DEVICE_OK);
  mem.Poke(kBase + 10 * 64, std::vector<uint8_t>(64, 0));
  const v1::DeviceResponse chk = dev->Check(kBase, 256 * 1024, Spec(), 8);
  ASSERT_EQ(chk.status(), v1::DEVICE_OK);
  EXPECT_EQ(chk.check().lines_checked(), 4096u);
  EXPECT_EQ(chk.check().lines_ok(), 4095u);
  ASSERT_EQ(chk.check().mismatches_size(), 1);
  EXPECT_EQ(chk.check().mismatches(0).line(), 10u);
  EXPECT_EQ(chk.check().mismatches(0).cls(), v1::LINE_ZERO);

  // Refusals are responses, not exceptions.
  const v1::DeviceResponse bad = dev->Fill(kBase, 100, Spec());
  EXPECT_EQ(bad.status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(bad.message(), "fill length 100 is not a multiple of line size 64");
  const v1::DeviceResponse bus = dev->Read(0x10, 4);
  EXPECT_EQ(bus.status(), v1::DEVICE_BUS_ERROR);
  EXPECT_EQ(bus.fault_addr(), 0x10u);

  v1::DeviceRequest req;
  req.set_tag(0xABCDEF);
  req.mutable_info();
  EXPECT_EQ(dev->Transact(req).tag(), 0xABCDEFu);

  EXPECT_EQ(fake->stats().requests, 8u);
  EXPECT_EQ(fake->stats().opens, 1u);
  EXPECT_EQ(fake->pending_in_packets(), 0u);
}

// Frames that are a whole number of packets get a ZLP, both ways; others do not.
class UsbZlpTest : public UsbDeviceClientTest,
                   public ::testing::WithParamInterface<std::tuple<size_t, size_t>> {};

TEST_P(UsbZlpTest, WholePacketFramesEndWithAZeroLengthPacket) {
  const auto [mps, packets] = GetParam();
  Make(mps, mps);
  for (const size_t extra : {size_t{0}, size_t{1}}) {
    const size_t frame_bytes = mps * packets + extra;
    const uint64_t tag = 0x40 + extra;
    SCOPED_TRACE(testing::Message() << "frame bytes " << frame_bytes);

    // Request: a Write whose frame is frame_bytes.
    const std::string data = RandomBytes(WriteLengthForFrame(tag, frame_bytes), 7);
    FakeUsbPort::Stats before = fake->stats();
    ASSERT_EQ(dev->Transact(WriteRequest(tag, kBase + 0x1000, data)).status(), v1::DEVICE_OK);
    EXPECT_EQ(fake->stats().out_zlps - before.out_zlps, extra == 0 ? 1u : 0u);
    EXPECT_EQ(fake->stats().requests - before.requests, 1u);
    EXPECT_EQ(mem.Peek(kBase + 0x1000, data.size()),
              std::vector<uint8_t>(data.begin(), data.end()));

    // Response: a Read whose response frame is frame_bytes.
    const uint32_t n = ReadLengthForFrame(tag, frame_bytes);
    before = fake->stats();
    const v1::DeviceResponse rd = dev->Transact(ReadRequest(tag, kBase + 0x1000, n));
    ASSERT_EQ(rd.status(), v1::DEVICE_OK);
    EXPECT_EQ(rd.data().size(), n);
    EXPECT_EQ(rd.data().substr(0, std::min<size_t>(n, data.size())),
              data.substr(0, std::min<size_t>(n, data.size())));
    EXPECT_EQ(fake->stats().in_zlps - before.in_zlps, extra == 0 ? 1u : 0u);
    EXPECT_EQ(fake->pending_in_packets(), 0u);  // the ZLP was consumed, not left behind
  }
  EXPECT_EQ(dev->Info().status(), v1::DEVICE_OK);  // and the link is still in step
}

INSTANTIATE_TEST_SUITE_P(FullAndHighSpeed, UsbZlpTest,
                         ::testing::Combine(::testing::Values(size_t{64}, size_t{512},
                                                              size_t{1024}),
                                            ::testing::Values(size_t{1}, size_t{3})),
                         [](const auto& p) {
                           return "mps" + std::to_string(std::get<0>(p.param)) + "x" +
                                  std::to_string(std::get<1>(p.param));
                         });

TEST_F(UsbDeviceClientTest, MegabyteWriteAndReadAreChunked) {
  Make();
  const std::string data = RandomBytes(firmware::kMaxDataBytes, 11);
  FakeUsbPort::Stats before = fake->stats();
  ASSERT_EQ(dev->Write(kBase, data).status(), v1::DEVICE_OK);
  EXPECT_EQ(fake->stats().out_transfers - before.out_transfers, 2u);  // 1 MiB + the rest
  EXPECT_EQ(fake->stats().max_out_transfer, kUsbMaxTransferBytes);

  const v1::DeviceResponse rd = dev->Read(kBase, firmware::kMaxDataBytes);
  ASSERT_EQ(rd.status(), v1::DEVICE_OK);
  EXPECT_TRUE(rd.data() == data);
  EXPECT_LE(fake->stats().max_in_capacity, kUsbMaxTransferBytes);

  // A response of exactly 1 MiB: the last IN transfer ends full, the ZLP is read alone.
  const uint32_t n = ReadLengthForFrame(0x77, kUsbMaxTransferBytes);
  before = fake->stats();
  const v1::DeviceResponse exact = dev->Transact(ReadRequest(0x77, kBase, n));
  ASSERT_EQ(exact.status(), v1::DEVICE_OK);
  EXPECT_TRUE(exact.data() == data.substr(0, n));
  EXPECT_EQ(fake->stats().in_zlps - before.in_zlps, 1u);
  EXPECT_EQ(fake->stats().in_transfers - before.in_transfers, 3u);  // 64 KiB, rest, ZLP
  EXPECT_EQ(fake->pending_in_packets(), 0u);
}

TEST_F(UsbDeviceClientTest, OversizeRequestIsRefusedBeforeSending) {
  Make();
  const std::string huge(framing::kMaxFramePayload + 1, 'x');
  const uint64_t before = fake->stats().out_transfers;
  ExpectDeviceError([&] { dev->Write(kBase, huge); },
                    {kName + ": ", "exceeds the 16777216-byte frame limit"});
  EXPECT_EQ(fake->stats().out_transfers, before);
  EXPECT_EQ(dev->Info().status(), v1::DEVICE_OK);
}

TEST_F(UsbDeviceClientTest, InTimeoutIsAnErrorAndTheNextTransactWorks) {
  Make();
  fake->in_faults.push_back(UsbStatus::kTimeout);  // the device is slower than the host
  ExpectDeviceError(
      [&] { dev->Info(); },
      {kName + ": waiting for the response timed out after 2000 ms", "LIBUSB_ERROR_TIMEOUT"});
  EXPECT_FALSE(fake->is_open());
  EXPECT_EQ(fake->pending_in_packets(), 1u);  // its late answer is still queued

  // The late answer is drained, and the next request gets its own response.
  dev->Write(kBase, "late");
  const v1::DeviceResponse rd = dev->Read(kBase, 4);
  EXPECT_EQ(rd.status(), v1::DEVICE_OK);
  EXPECT_EQ(rd.data(), "late");
  EXPECT_EQ(dev->reopens(), 1u);
  EXPECT_EQ(fake->pending_in_packets(), 0u);
}

TEST_F(UsbDeviceClientTest, AnswerLaterThanTheDrainIsSkippedByItsTag) {
  Make();
  fake->hold_next_response = true;  // answered only after the next request arrives
  ExpectDeviceError([&] { dev->Info(); }, {"waiting for the response timed out"});
  dev->Write(kBase + 8, "skip");  // the held Info response comes first and is skipped
  const v1::DeviceResponse rd = dev->Read(kBase + 8, 4);
  EXPECT_EQ(rd.data(), "skip");
  EXPECT_EQ(fake->stats().requests, 3u);
}

TEST_F(UsbDeviceClientTest, NoDeviceWhileIdleReopensAndSucceeds) {
  Make();
  ASSERT_EQ(dev->Info().status(), v1::DEVICE_OK);
  fake->Unplug(2);  // replugged; re-enumeration takes two Open attempts
  EXPECT_EQ(dev->Write(kBase, "again").status(), v1::DEVICE_OK);
  EXPECT_EQ(dev->Read(kBase, 5).data(), "again");
  EXPECT_EQ(dev->reopens(), 1u);
  EXPECT_EQ(fake->stats().open_calls, 1u + 3u);
  EXPECT_EQ(fake->stats().requests, 3u);  // the Write was sent once, to the new device
}

TEST_F(UsbDeviceClientTest, NoDeviceForeverFailsAfterBoundedRetries) {
  Make();
  fake->Unplug(-1);
  const Clock::time_point start = Clock::now();
  ExpectDeviceError([&] { dev->Info(); },
                    {kName + ": reopening the device: no such device (0 devices with this "
                             "vid:pid) (gave up after 4 attempts in "});
  const auto elapsed = Clock::now() - start;
  EXPECT_GE(elapsed, std::chrono::milliseconds(10 + 20 + 40));  // backoff waits
  EXPECT_LT(elapsed, std::chrono::seconds(2));
  EXPECT_EQ(fake->stats().open_calls, 1u + 4u);

  // Still gone: the next request fails the same way, and the same time-bounded way.
  ExpectDeviceError([&] { dev->Info(); }, {"gave up after 4 attempts"});
  EXPECT_EQ(fake->stats().open_calls, 1u + 8u);

  fake->Replug();
  EXPECT_EQ(dev->Info().status(), v1::DEVICE_OK);
}

TEST_F(UsbDeviceClientTest, DefaultReconnectionIsBounded) {
  Make(512, 512, UsbClientOptions{});
  fake->Unplug(-1);
  const Clock::time_point start = Clock::now();
  ExpectDeviceError([&] { dev->Info(); }, {"gave up after 5 attempts"});
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
}

TEST_F(UsbDeviceClientTest, NoDeviceWhileAnsweringIsNotRetried) {
  Make();
  fake->in_faults.push_back(UsbStatus::kNoDevice);
  ExpectDeviceError(
      [&] { dev->Write(kBase, "once"); },
      {kName + ": waiting for the response: LIBUSB_ERROR_NO_DEVICE", "is not retried"});
  EXPECT_EQ(fake->stats().requests, 1u);  // executed once, not sent again
  EXPECT_EQ(dev->Info().status(), v1::DEVICE_OK);
  EXPECT_EQ(dev->reopens(), 1u);
}

TEST_F(UsbDeviceClientTest, StallIsAnError) {
  Make();
  fake->in_faults.push_back(UsbStatus::kPipe);
  ExpectDeviceError([&] { dev->Info(); },
                    {kName + ": waiting for the response: LIBUSB_ERROR_PIPE"});
  EXPECT_EQ(dev->Info().status(), v1::DEVICE_OK);
}

TEST_F(UsbDeviceClientTest, CutOffRequestIsEndedAndItsAnswerDrained) {
  Make();
  mem.Poke(kBase, std::vector<uint8_t>(64 * 1024, 0));
  fake->cut_out_after_packets = 4;
  ExpectDeviceError([&] { dev->Write(kBase, std::string(64 * 1024, 'w')); },
                    {kName + ": sending the request (2048 of ", "timed out after 2000 ms"});
  EXPECT_EQ(fake->stats().truncated_frames, 0u);  // the device still waits for the rest

  EXPECT_EQ(dev->Info().status(), v1::DEVICE_OK);
  EXPECT_EQ(fake->stats().truncated_frames, 1u);  // ended by the ZLP, answered, drained
  EXPECT_EQ(fake->stats().requests, 1u);          // only the Info ran
  EXPECT_EQ(mem.Peek(kBase, 4), std::vector<uint8_t>(4, 0));
}

struct BadResponse {
  const char* name;
  std::function<void(std::string&)> tamper;
  const char* error;
};

void PrintTo(const BadResponse& b, std::ostream* os) { *os << b.name; }

class UsbBadResponseTest : public UsbDeviceClientTest,
                           public ::testing::WithParamInterface<BadResponse> {};

TEST_P(UsbBadResponseTest, IsADeviceErrorAndTheNextTransactWorks) {
  Make();
  fake->tamper = GetParam().tamper;
  ExpectDeviceError([&] { dev->Info(); }, {kName + ": ", GetParam().error});
  fake->tamper = nullptr;
  const v1::DeviceResponse info = dev->Info();
  EXPECT_EQ(info.status(), v1::DEVICE_OK);
  EXPECT_EQ(info.info().engine(), "dmahil-usb-fake-engine");
  EXPECT_EQ(fake->pending_in_packets(), 0u);
}

void SetLength(std::string& frame, uint32_t len) {
  for (int i = 0; i < 4; ++i) frame[static_cast<size_t>(i)] = static_cast<char>(len >> (8 * i));
}

INSTANTIATE_TEST_SUITE_P(
    Frames, UsbBadResponseTest,
    ::testing::Values(
        BadResponse{"WrongTag",
                    [](std::string& f) {
                      v1::DeviceResponse r;
                      framing::ParseFramePayload(std::string_view(f).substr(4), r);
                      r.set_tag(r.tag() + 100);
                      f = framing::EncodeFrame(r);
                    },
                    "response tag 101 does not match request tag 1"},
        BadResponse{"Truncated", [](std::string& f) { f.resize(f.size() / 2); },
                    "bad response: truncated frame: the device ended it after "},
        BadResponse{"HeaderOnlyPart", [](std::string& f) { f.resize(2); },
                    "truncated frame: the device ended it after 2 of at least 4 bytes"},
        BadResponse{"OversizeLength",
                    [](std::string& f) { SetLength(f, framing::kMaxFramePayload + 1); },
                    "bad response: frame length 16777217 exceeds the 16777216-byte limit"},
        BadResponse{"ExtraBytes", [](std::string& f) { f += std::string(10, 'z'); },
                    "bytes for a "},
        BadResponse{"ExtraPacketsInsteadOfZlp",
                    [](std::string& f) {
                      // Pad the payload to a whole packet, then send 3 bytes more.
                      v1::DeviceResponse r;
                      framing::ParseFramePayload(std::string_view(f).substr(4), r);
                      for (size_t n = 1; f.size() != 512 && n < 512; ++n) {
                        r.set_message(std::string(n, 'm'));
                        f = framing::EncodeFrame(r);
                      }
                      f += "abc";
                    },
                    "the device sent 515 bytes for a 512-byte frame"},
        // The firmware's answer to a frame it could not read (frame_handler.cc): the
        // error is its message, not "response tag 0 does not match request tag 1".
        BadResponse{"RefusalWithTagZero",
                    [](std::string& f) {
                      v1::DeviceResponse r;
                      r.set_status(v1::DEVICE_BAD_REQUEST);
                      r.set_message("request is not a valid DeviceRequest: invalid wire type");
                      f = framing::EncodeFrame(r);
                    },
                    "the device answered a frame it could not read (tag 0, DEVICE_BAD_REQUEST) "
                    "instead of request tag 1: request is not a valid DeviceRequest: invalid "
                    "wire type"},
        BadResponse{"NotADeviceResponse",
                    [](std::string& f) { f = std::string("\x03\x00\x00\x00\xff\xff\xff", 7); },
                    "bad response: frame payload of 3 bytes is not a valid "
                    "dmahil.v1.DeviceResponse"}),
    [](const auto& p) { return std::string(p.param.name); });

TEST_F(UsbDeviceClientTest, ExtraBytesWhereTheZlpBelongsAreAnError) {
  Make();
  const uint32_t n = ReadLengthForFrame(0x99, kUsbMaxTransferBytes);
  fake->tamper = [](std::string& f) { f += "xyz"; };
  ExpectDeviceError([&] { dev->Transact(ReadRequest(0x99, kBase, n)); },
                    {"the device sent 3 more bytes after the 1048576-byte frame instead of a "
                     "zero-length packet"});
  fake->tamper = nullptr;
  EXPECT_EQ(dev->Info().status(), v1::DEVICE_OK);
}

TEST(UsbDeviceClientOpen, MissingDeviceIsOneClearErrorWithoutRetries) {
  firmware::RamPort mem(kBase, 4096);
  auto port = std::make_unique<FakeUsbPort>(mem);
  port->Unplug(-1);
  const Clock::time_point start = Clock::now();
  try {
    UsbDeviceClient dev(std::move(port));  // default options: a first retry would wait 100 ms
    ADD_FAILURE() << "no DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_STREQ(e.what(),
                 "usb 1d50:6170 serial FAKE: no such device (0 devices with this vid:pid)");
  }
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(50));  // no backoff sleep
}

// ---- The wiring MakeUsbDeviceClient opens (ValidateUsbEngine) ----

TEST(UsbEngineWiring, AddressesIdsAndInterfaceCheckedAndAnEngineWithoutSerialClaimedWhole) {
  const std::string text = R"(name: "lab"
board {
  name: "a"
  wiring { engine { vid: 0x1d50 pid: 0x6170 ep_out: 0x12 ep_in: 0x81 interface: 256 } }
}
board {
  name: "b"
  wiring { engine { vid: 0x1d50 pid: 0x6170 ep_out: 0x01 ep_in: 0x80 } }
}
)";
  v1::Farm farm;
  SourceMap source;
  ParseTextProto(text, "lab.textproto", farm, &source);
  Problems problems(source);
  Claims claims(source);
  ValidateUsbEngine(farm.board(0).wiring().engine(), "board[0].wiring.engine", problems, claims);
  ValidateUsbEngine(farm.board(1).wiring().engine(), "board[1].wiring.engine", problems, claims);
  EXPECT_EQ(problems.Text(),
            "lab.textproto:4:45: board[0].wiring.engine.ep_out 0x12 is not a bulk endpoint "
            "address (number 1..15 in bits 3..0)\n"
            "lab.textproto:4:70: board[0].wiring.engine.interface 256 must be 0..255\n"
            "lab.textproto:8:33: USB engine 1d50:6170 (any serial) is already used by "
            "board[0].wiring.engine.pid at lab.textproto:4:33\n"
            "lab.textproto:8:58: board[1].wiring.engine.ep_in 0x80 is not a bulk endpoint "
            "address (number 1..15 in bits 3..0)");
}

}  // namespace
}  // namespace dmahil::controller
