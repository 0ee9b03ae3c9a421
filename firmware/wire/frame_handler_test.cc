// Equivalence of the firmware's protocol handler (nanopb, firmware/wire) with the host
// codec (libprotobuf, firmware/host/codec.h) on the same requests, plus the frame rules of
// docs/device-protocol.md that only the firmware handler implements.
#include "firmware/wire/frame_handler.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/framing.h"
#include "dmahil/v1/device.pb.h"
#include "firmware/host/codec.h"
#include "firmware/host/ram_port.h"

namespace dmahil::firmware::wire {
namespace {

constexpr uint64_t kBase = 0x4000'0000;
// The largest Fill/Check fits, with room to spare.
constexpr size_t kWindow = (16u << 20) + (64u << 10);
constexpr uint64_t kEnd = kBase + kWindow;

std::string Frame(const std::string& payload) {
  std::string frame(kFrameHeaderBytes, '\0');
  EncodeFrameLength(static_cast<uint32_t>(payload.size()), reinterpret_cast<uint8_t*>(&frame[0]));
  return frame + payload;
}

v1::PatternSpec Spec(uint32_t line_size, uint32_t generation = 1, uint32_t buffer_id = 3,
                     uint32_t first_line = 0) {
  v1::PatternSpec s;
  s.set_seed(0x5eed);
  s.set_buffer_id(buffer_id);
  s.set_generation(generation);
  s.set_first_line(first_line);
  s.set_line_size(line_size);
  return s;
}

v1::DeviceRequest InfoReq(uint64_t tag) {
  v1::DeviceRequest r;
  r.set_tag(tag);
  r.mutable_info();
  return r;
}

v1::DeviceRequest ReadReq(uint64_t tag, uint64_t addr, uint32_t len) {
  v1::DeviceRequest r;
  r.set_tag(tag);
  r.mutable_read()->set_bus_addr(addr);
  r.mutable_read()->set_length(len);
  return r;
}

v1::DeviceRequest WriteReq(uint64_t tag, uint64_t addr, std::string data) {
  v1::DeviceRequest r;
  r.set_tag(tag);
  r.mutable_write()->set_bus_addr(addr);
  r.mutable_write()->set_data(std::move(data));
  return r;
}

v1::DeviceRequest FillReq(uint64_t tag, uint64_t addr, uint32_t len, const v1::PatternSpec& p) {
  v1::DeviceRequest r;
  r.set_tag(tag);
  r.mutable_fill()->set_bus_addr(addr);
  r.mutable_fill()->set_length(len);
  *r.mutable_fill()->mutable_pattern() = p;
  return r;
}

v1::DeviceRequest CheckReq(uint64_t tag, uint64_t addr, uint32_t len, const v1::PatternSpec& p,
                           uint32_t max_findings = 0) {
  v1::DeviceRequest r;
  r.set_tag(tag);
  r.mutable_check()->set_bus_addr(addr);
  r.mutable_check()->set_length(len);
  *r.mutable_check()->mutable_pattern() = p;
  r.mutable_check()->set_max_findings(max_findings);
  return r;
}

std::string Bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// The parts of a response both sides must agree on (messages may differ).
void ExpectSame(const v1::DeviceResponse& host, const v1::DeviceResponse& fw) {
  EXPECT_EQ(host.tag(), fw.tag());
  EXPECT_EQ(host.status(), fw.status());
  EXPECT_EQ(host.fault_addr(), fw.fault_addr());
  EXPECT_EQ(host.data(), fw.data());
  ASSERT_EQ(host.has_check(), fw.has_check());
  EXPECT_EQ(host.check().lines_checked(), fw.check().lines_checked());
  EXPECT_EQ(host.check().lines_ok(), fw.check().lines_ok());
  EXPECT_EQ(host.check().mismatches_total(), fw.check().mismatches_total());
  ASSERT_EQ(host.check().mismatches_size(), fw.check().mismatches_size());
  for (int i = 0; i < host.check().mismatches_size(); ++i) {
    const v1::LineFinding& a = host.check().mismatches(i);
    const v1::LineFinding& b = fw.check().mismatches(i);
    ASSERT_EQ(a.SerializeAsString(), b.SerializeAsString())
        << "finding " << i << ": host " << a.ShortDebugString() << ", firmware "
        << b.ShortDebugString();
  }
  ASSERT_EQ(host.has_info(), fw.has_info());
  EXPECT_EQ(host.info().engine(), fw.info().engine());
  EXPECT_EQ(host.info().max_transfer(), fw.info().max_transfer());
  EXPECT_EQ(host.info().address_bits(), fw.info().address_bits());
  // Both say why whenever something went wrong.
  EXPECT_EQ(host.message().empty(), fw.message().empty())
      << "host: '" << host.message() << "', firmware: '" << fw.message() << "'";
}

// Two identical engines over two identical RAM windows: one behind the host codec, one
// behind the firmware's FrameHandler.
class WireTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (counters_in_step_) {
      EXPECT_EQ(host_ram.reads(), fw_ram.reads());
      EXPECT_EQ(host_ram.writes(), fw_ram.writes());
    }
    EXPECT_TRUE(host_ram.Peek(kBase, kWindow) == fw_ram.Peek(kBase, kWindow))
        << "the two engines' memories differ";
  }

  // The host's answer to a payload, as its TCP device server gives it: a payload that
  // libprotobuf cannot parse is answered DEVICE_BAD_REQUEST with tag 0.
  v1::DeviceResponse Host(const std::string& payload, bool* parsed) {
    v1::DeviceRequest req;
    *parsed = req.ParseFromString(payload);
    if (*parsed) return device_host::Execute(host_engine, req);
    v1::DeviceResponse resp;
    resp.set_status(v1::DEVICE_BAD_REQUEST);
    resp.set_message("not a DeviceRequest");
    return resp;
  }

  // The firmware's answer to a whole frame, decoded with libprotobuf.
  v1::DeviceResponse Firmware(const std::string& frame, Reply* reply) {
    *reply = handler->HandleFrame(reinterpret_cast<const uint8_t*>(frame.data()), frame.size(),
                                  out.data(), out.size());
    v1::DeviceResponse resp;
    EXPECT_GT(reply->size, kFrameHeaderBytes);
    EXPECT_LE(reply->size, kMaxResponseFrameBytes);
    const std::string_view bytes(reinterpret_cast<const char*>(out.data()), reply->size);
    EXPECT_EQ(framing::DecodeFrame(bytes, resp), reply->size) << "not exactly one response frame";
    EXPECT_EQ(static_cast<int>(reply->status), static_cast<int>(resp.status()));
    return resp;
  }

  // Sends `payload` to both; expects the same answer and the same bus accesses. Returns
  // the firmware's response.
  v1::DeviceResponse Both(const std::string& payload) {
    bool host_parsed = false;
    Reply reply;
    const v1::DeviceResponse h = Host(payload, &host_parsed);
    const v1::DeviceResponse f = Firmware(Frame(payload), &reply);
    EXPECT_EQ(host_parsed, reply.parsed);
    ExpectSame(h, f);
    EXPECT_EQ(host_ram.reads(), fw_ram.reads());
    EXPECT_EQ(host_ram.writes(), fw_ram.writes());
    return f;
  }
  v1::DeviceResponse Both(const v1::DeviceRequest& req) {
    SCOPED_TRACE(req.ShortDebugString().substr(0, 200));
    return Both(req.SerializeAsString());
  }

  // The host codec's message for `req` (says which reject reason it was).
  std::string HostMessage(const v1::DeviceRequest& req) {
    bool parsed = false;
    return Host(req.SerializeAsString(), &parsed).message();
  }

  const EngineInfo info_{"wire-test", kMaxDataBytes, 48};
  RamPort host_ram{kBase, kWindow};
  RamPort fw_ram{kBase, kWindow};
  CommandProcessor host_engine{host_ram, info_};
  CommandProcessor fw_engine{fw_ram, info_};
  std::unique_ptr<FrameHandler> handler = std::make_unique<FrameHandler>(fw_engine);
  std::vector<uint8_t> out = std::vector<uint8_t>(kMaxResponseFrameBytes);
  // False once the host alone executed a request (a documented divergence).
  bool counters_in_step_ = true;
};

TEST_F(WireTest, InfoReportsTheEngine) {
  const v1::DeviceResponse r = Both(InfoReq(7));
  EXPECT_EQ(r.status(), v1::DEVICE_OK);
  EXPECT_EQ(r.tag(), 7u);
  EXPECT_EQ(r.info().engine(), "wire-test");
  EXPECT_EQ(r.info().max_transfer(), kMaxDataBytes);
  EXPECT_EQ(r.info().address_bits(), 48u);
}

TEST_F(WireTest, WriteThenReadRoundTripsAndEchoesTags) {
  const std::string data = Bytes(4000, 1);
  EXPECT_EQ(Both(WriteReq(~uint64_t{0}, kBase + 100, data)).tag(), ~uint64_t{0});
  const v1::DeviceResponse r = Both(ReadReq(1, kBase + 100, 4000));
  EXPECT_EQ(r.status(), v1::DEVICE_OK);
  EXPECT_EQ(r.tag(), 1u);
  EXPECT_EQ(r.data(), data);
  EXPECT_TRUE(r.message().empty());
}

TEST_F(WireTest, MaximumSizesAreAcceptedAndOneMoreIsRefused) {
  const std::string mib = Bytes(kMaxDataBytes, 2);
  EXPECT_EQ(Both(WriteReq(1, kBase, mib)).status(), v1::DEVICE_OK);
  const v1::DeviceResponse read = Both(ReadReq(2, kBase, kMaxDataBytes));
  EXPECT_EQ(read.status(), v1::DEVICE_OK);
  EXPECT_EQ(read.data(), mib);
  EXPECT_EQ(Both(WriteReq(3, kBase, mib + "x")).status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(Both(ReadReq(4, kBase, kMaxDataBytes + 1)).status(), v1::DEVICE_BAD_REQUEST);

  EXPECT_EQ(Both(FillReq(5, kBase, kMaxPatternBytes, Spec(64))).status(), v1::DEVICE_OK);
  const v1::DeviceResponse check = Both(CheckReq(6, kBase, kMaxPatternBytes, Spec(64)));
  EXPECT_EQ(check.status(), v1::DEVICE_OK);
  EXPECT_EQ(check.check().lines_checked(), kMaxPatternBytes / 64);
  EXPECT_EQ(check.check().lines_ok(), kMaxPatternBytes / 64);
  EXPECT_EQ(Both(FillReq(7, kBase, kMaxPatternBytes + 64, Spec(64))).status(),
            v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(Both(CheckReq(8, kBase, kMaxPatternBytes + 64, Spec(64))).status(),
            v1::DEVICE_BAD_REQUEST);
  // Line sizes at both ends.
  EXPECT_EQ(Both(FillReq(9, kBase, 4096, Spec(16))).status(), v1::DEVICE_OK);
  EXPECT_EQ(Both(CheckReq(10, kBase, 8192, Spec(4096), kMaxFindings)).status(), v1::DEVICE_OK);
}

TEST_F(WireTest, EveryRejectReasonIsABadRequestWithTheTagEchoed) {
  v1::DeviceRequest no_pattern = FillReq(1, kBase, 64, Spec(64));
  no_pattern.mutable_fill()->clear_pattern();
  v1::DeviceRequest no_op;
  no_op.set_tag(12);
  const struct {
    v1::DeviceRequest req;
    const char* host_says;  // proves which reason it was
  } cases[] = {
      {ReadReq(1, kBase, 0), "length is 0"},
      {WriteReq(2, kBase, ""), "length is 0"},
      {FillReq(3, kBase, 0, Spec(64)), "length is 0"},
      {ReadReq(4, kBase, 0xFFFFFFFFu), "exceeds the 1048576-byte limit"},
      {CheckReq(5, kBase, 32u << 20, Spec(64)), "exceeds the 16777216-byte limit"},
      {FillReq(6, kBase, 64, Spec(48)), "is not a power of two"},
      {CheckReq(7, kBase, 8192, Spec(8192)), "is not a power of two"},
      {no_pattern, "line size 0 is not a power of two"},
      {FillReq(8, kBase, 100, Spec(64)), "is not a multiple of line size"},
      {CheckReq(9, kBase + 32, 128, Spec(64)), "is not aligned"},
      {ReadReq(10, ~uint64_t{0} - 15, 32), "wraps"},
      {FillReq(11, ~uint64_t{0} - 63, 128, Spec(64)), "wraps"},
      {FillReq(13, kBase, 128, Spec(64, 1, 3, 0xFFFFFFFFu)), "passes line index"},
      {CheckReq(14, kBase, 64, Spec(64, 1, 65536)), "at most 65535"},
      {FillReq(15, kBase, 64, Spec(64, 70000)), "at most 65535"},
      {CheckReq(16, kBase, 64, Spec(64), kMaxFindings + 1), "max_findings 4097 exceeds 4096"},
      {no_op, "has no op"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.req.ShortDebugString());
    EXPECT_NE(HostMessage(c.req).find(c.host_says), std::string::npos) << HostMessage(c.req);
    const v1::DeviceResponse r = Both(c.req);
    EXPECT_EQ(r.status(), v1::DEVICE_BAD_REQUEST);
    EXPECT_EQ(r.tag(), c.req.tag());
    EXPECT_FALSE(r.message().empty());
  }
  EXPECT_EQ(host_ram.reads() + host_ram.writes(), 0u) << "a refused request touched the bus";
}

TEST_F(WireTest, BusErrorsReportTheFirstFaultingAddress) {
  v1::DeviceResponse r = Both(ReadReq(1, kBase - 64, 128));
  EXPECT_EQ(r.status(), v1::DEVICE_BUS_ERROR);
  EXPECT_EQ(r.fault_addr(), kBase - 64);
  EXPECT_TRUE(r.data().empty());
  r = Both(WriteReq(2, kEnd - 10, Bytes(20, 3)));
  EXPECT_EQ(r.status(), v1::DEVICE_BUS_ERROR);
  EXPECT_EQ(r.fault_addr(), kEnd);
  // A fill stops at the failing chunk; the chunks before it are written (on both sides).
  r = Both(FillReq(3, kEnd - 8192, 16384, Spec(64)));
  EXPECT_EQ(r.status(), v1::DEVICE_BUS_ERROR);
  EXPECT_EQ(r.fault_addr(), kEnd);
  // A check goes on: unreachable lines are findings, the status stays OK.
  r = Both(CheckReq(4, kEnd - 256, 512, Spec(64, 1, 3, 124), 10));  // line 124 of the fill
  EXPECT_EQ(r.status(), v1::DEVICE_OK);
  EXPECT_EQ(r.fault_addr(), kEnd);
  EXPECT_EQ(r.check().lines_checked(), 8u);
  EXPECT_EQ(r.check().lines_ok(), 4u);
  ASSERT_EQ(r.check().mismatches_size(), 4);
  EXPECT_EQ(r.check().mismatches(0).cls(), v1::LINE_BUS_ERROR);
  EXPECT_EQ(r.check().mismatches(0).line(), 128u);
  EXPECT_FALSE(r.message().empty());
}

TEST_F(WireTest, CheckFindingsAgreeLineByLine) {
  constexpr uint32_t kLen = 1u << 20;  // 16384 lines of 64 bytes
  ASSERT_EQ(Both(FillReq(1, kBase, kLen, Spec(64, 1))).status(), v1::DEVICE_OK);
  ASSERT_EQ(Both(FillReq(2, kBase, kLen / 2, Spec(64, 2))).status(), v1::DEVICE_OK);
  // Corrupt, zero, misplace and tear a few lines of generation 2.
  ASSERT_EQ(Both(WriteReq(3, kBase + 64 * 10, Bytes(64, 4))).status(), v1::DEVICE_OK);
  ASSERT_EQ(Both(WriteReq(4, kBase + 64 * 11, std::string(64, '\0'))).status(), v1::DEVICE_OK);
  ASSERT_EQ(Both(FillReq(5, kBase + 64 * 12, 64, Spec(64, 2, 9))).status(), v1::DEVICE_OK);
  ASSERT_EQ(Both(WriteReq(6, kBase + 64 * 13 + 32, Bytes(32, 5))).status(), v1::DEVICE_OK);

  // Generation 2 over the whole range: 8192 stale lines after the first half.
  for (uint32_t max : {0u, 3u, kMaxFindings}) {
    const v1::DeviceResponse r = Both(CheckReq(10 + max, kBase, kLen, Spec(64, 2), max));
    EXPECT_EQ(r.status(), v1::DEVICE_OK);
    EXPECT_EQ(r.check().lines_checked(), kLen / 64);
    EXPECT_EQ(r.check().mismatches_total(), 4u + kLen / 128);
    EXPECT_EQ(r.check().mismatches_size(), static_cast<int>(max == 0 ? kDefaultMaxFindings : max));
    ASSERT_GE(r.check().mismatches_size(), 3);
    EXPECT_EQ(r.check().mismatches(0).cls(), v1::LINE_CORRUPT);
    EXPECT_EQ(r.check().mismatches(1).cls(), v1::LINE_ZERO);
    EXPECT_EQ(r.check().mismatches(2).cls(), v1::LINE_MISPLACED);
  }
}

TEST_F(WireTest, RepeatedFieldsMergeOrReplaceAsInProtobuf) {
  // Concatenated messages merge: the second fill adds length and pattern to the first.
  v1::DeviceRequest a;
  a.set_tag(1);
  a.mutable_fill()->set_bus_addr(kBase + 4096);
  v1::DeviceRequest b;
  b.set_tag(2);
  b.mutable_fill()->set_length(256);
  *b.mutable_fill()->mutable_pattern() = Spec(64);
  v1::DeviceResponse r = Both(a.SerializeAsString() + b.SerializeAsString());
  EXPECT_EQ(r.status(), v1::DEVICE_OK);
  EXPECT_EQ(r.tag(), 2u);
  EXPECT_EQ(Both(CheckReq(3, kBase + 4096, 256, Spec(64))).check().lines_ok(), 4u);
  // Another op replaces the first; a second data field replaces the first.
  r = Both(ReadReq(4, kBase, 64).SerializeAsString() +
           WriteReq(5, kBase + 64, "xyz").SerializeAsString() +
           WriteReq(5, kBase + 64, "abcd").SerializeAsString());
  EXPECT_EQ(r.status(), v1::DEVICE_OK);
  EXPECT_TRUE(r.data().empty());
  EXPECT_EQ(Both(ReadReq(6, kBase + 64, 4)).data(), "abcd");
}

TEST_F(WireTest, UnparsableFramesAreBadRequestsWithTagZeroAndNeverTouchTheBus) {
  const std::string valid = WriteReq(9, kBase, "data").SerializeAsString();
  std::string oversize(kFrameHeaderBytes, '\0');
  EncodeFrameLength(kMaxFramePayload + 1, reinterpret_cast<uint8_t*>(&oversize[0]));
  const std::string frames[] = {
      "",
      std::string("\x05\x00", 2),
      Frame(valid).substr(0, valid.size()),  // the prefix announces 4 bytes more than sent
      Frame(valid) + "!",                    // one byte more than the prefix says
      oversize + valid,
      Frame("\xff\xff\xff"),
      Frame(valid.substr(0, valid.size() - 2)),  // payload cut inside the data field
      Frame(std::string("\x08\x01\x00", 3)),     // tag 1, then field number 0
  };
  for (const std::string& frame : frames) {
    SCOPED_TRACE(testing::PrintToString(frame.substr(0, 16)));
    Reply reply;
    const v1::DeviceResponse r = Firmware(frame, &reply);
    EXPECT_FALSE(reply.parsed);
    EXPECT_EQ(r.status(), v1::DEVICE_BAD_REQUEST);
    EXPECT_EQ(r.tag(), 0u);
    EXPECT_FALSE(r.message().empty());
  }
  EXPECT_EQ(fw_ram.reads() + fw_ram.writes(), 0u);
  // An empty payload is a request with no op (tag 0), on both sides.
  const v1::DeviceResponse empty = Both(std::string());
  EXPECT_EQ(empty.status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(empty.tag(), 0u);
}

TEST_F(WireTest, TooSmallAnOutputBufferDoesNothing) {
  const std::string frame = Frame(WriteReq(1, kBase, "data").SerializeAsString());
  const Reply reply = handler->HandleFrame(reinterpret_cast<const uint8_t*>(frame.data()),
                                           frame.size(), out.data(), out.size() - 1);
  EXPECT_EQ(reply.size, 0u);
  EXPECT_EQ(fw_ram.writes(), 0u);
  EXPECT_EQ(handler->Refuse("x", out.data(), 16).size, 0u);
}

TEST_F(WireTest, RefuseAnswersTagZero) {
  const Reply reply = handler->Refuse("frame too large for this device", out.data(), out.size());
  v1::DeviceResponse r;
  ASSERT_EQ(framing::DecodeFrame(
                std::string_view(reinterpret_cast<const char*>(out.data()), reply.size), r),
            reply.size);
  EXPECT_FALSE(reply.parsed);
  EXPECT_EQ(r.status(), v1::DEVICE_BAD_REQUEST);
  EXPECT_EQ(r.tag(), 0u);
  EXPECT_EQ(r.message(), "frame too large for this device");
}

// What docs/device-protocol.md lets a device refuse although libprotobuf accepts it: a
// known field with another wire type, a uint32 field above 2^32-1, groups, a field key
// above 2^32-1. The host build accepts them; the firmware answers DEVICE_BAD_REQUEST with
// tag 0.
TEST_F(WireTest, DocumentedDivergencesAreRefusedByTheFirmware) {
  const std::string payloads[] = {
      // tag 3, read {length: 2^32 + 5 (varint)}
      std::string("\x08\x03\x1a\x06\x10\x85\x80\x80\x80\x10", 10),
      // tag 4, write {bus_addr: kBase, data as a varint}
      std::string("\x08\x04\x22\x08\x08\x80\x80\x80\x80\x04\x10\x01", 12),
      // tag 5, fill {bus_addr as fixed64}
      std::string("\x08\x05\x2a\x09\x09\x00\x00\x00\x40\x00\x00\x00\x00", 13),
      // tag 6, info {}, then an unknown group 15 {}
      std::string("\x08\x06\x12\x00\x7b\x7c", 6),
      // tag 7, info {}, then a fixed32 field whose key varint has bits above 2^32
      std::string("\x08\x07\x12\x00\x8d\xa0\xd4\xb7\x73\x54\x04\x9f\x05", 13),
  };
  for (const std::string& p : payloads) {
    SCOPED_TRACE(testing::PrintToString(p));
    v1::DeviceRequest req;
    EXPECT_TRUE(req.ParseFromString(p)) << "libprotobuf accepts it";
    Reply reply;
    const v1::DeviceResponse r = Firmware(Frame(p), &reply);
    EXPECT_FALSE(reply.parsed);
    EXPECT_EQ(r.status(), v1::DEVICE_BAD_REQUEST);
    EXPECT_EQ(r.tag(), 0u);
  }
  EXPECT_EQ(fw_ram.reads() + fw_ram.writes(), 0u);
}

// ---- Garbage: random payloads and mutated requests -----------------------------------

// A minimal protobuf wire walker over the request schema, to tell whether a payload that
// libprotobuf accepts holds one of the divergences above.
enum class Kind { kU64, kU32, kBytes, kRequest, kInfo, kRead, kWrite, kFill, kCheck, kPattern };

Kind FieldKind(Kind msg, uint64_t field, bool* known) {
  *known = true;
  switch (msg) {
    case Kind::kRequest:
      if (field == 1) return Kind::kU64;
      if (field >= 2 && field <= 6) {
        const Kind ops[] = {Kind::kInfo, Kind::kRead, Kind::kWrite, Kind::kFill, Kind::kCheck};
        return ops[field - 2];
      }
      break;
    case Kind::kRead:
      if (field == 1) return Kind::kU64;
      if (field == 2) return Kind::kU32;
      break;
    case Kind::kWrite:
      if (field == 1) return Kind::kU64;
      if (field == 2) return Kind::kBytes;
      break;
    case Kind::kFill:
    case Kind::kCheck:
      if (field == 1) return Kind::kU64;
      if (field == 2 || (field == 4 && msg == Kind::kCheck)) return Kind::kU32;
      if (field == 3) return Kind::kPattern;
      break;
    case Kind::kPattern:
      if (field == 1) return Kind::kU64;
      if (field >= 2 && field <= 5) return Kind::kU32;
      break;
    default:
      break;
  }
  *known = false;
  return Kind::kBytes;
}

bool ReadVarint(std::string_view& in, uint64_t* v, bool* overlong) {
  *v = 0;
  for (int i = 0; i < 10; ++i) {
    if (in.empty()) return false;
    const auto b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    if (i == 9 && b > 1) *overlong = true;
    *v |= uint64_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// True if `in`, a message of kind `msg`, holds a documented divergence (or cannot be
// walked at all).
bool Divergent(std::string_view in, Kind msg) {
  while (!in.empty()) {
    uint64_t key = 0;
    uint64_t v = 0;
    bool overlong = false;
    if (!ReadVarint(in, &key, &overlong) || overlong || key > 0xFFFFFFFFu) return true;
    bool known = false;
    const Kind kind = FieldKind(msg, key >> 3, &known);
    const uint64_t wire = key & 7;
    const bool scalar = kind == Kind::kU64 || kind == Kind::kU32;
    if (wire == 3 || wire == 4) return true;
    if (known && (scalar ? wire != 0 : wire != 2)) return true;
    switch (wire) {
      case 0:
        if (!ReadVarint(in, &v, &overlong) || overlong) return true;
        if (known && kind == Kind::kU32 && v > 0xFFFFFFFFu) return true;
        break;
      case 1:
      case 5: {
        const size_t n = wire == 1 ? 8 : 4;
        if (in.size() < n) return true;
        in.remove_prefix(n);
        break;
      }
      case 2: {
        if (!ReadVarint(in, &v, &overlong) || overlong || v > 0xFFFFFFFFu || v > in.size()) {
          return true;
        }
        const std::string_view sub = in.substr(0, v);
        in.remove_prefix(v);
        if (known && !scalar && kind != Kind::kBytes && Divergent(sub, kind)) return true;
        break;
      }
      default:
        return true;
    }
  }
  return false;
}

TEST_F(WireTest, GarbageAndMutatedRequestsAgreeOrAreDocumentedDivergences) {
  const std::string seeds[] = {
      InfoReq(1).SerializeAsString(),
      ReadReq(2, kBase + 64, 256).SerializeAsString(),
      WriteReq(3, kBase + 128, Bytes(40, 6)).SerializeAsString(),
      FillReq(4, kBase, 1024, Spec(64, 7, 8, 9)).SerializeAsString(),
      CheckReq(5, kBase, 2048, Spec(32, 7, 8, 9), 5).SerializeAsString(),
  };
  std::mt19937 rng(20240611);
  int agreed = 0;
  int refused_both = 0;
  int divergent = 0;
  for (int i = 0; i < 6000; ++i) {
    std::string p;
    if (i % 3 == 0) {
      p = Bytes(rng() % 48, static_cast<uint32_t>(rng()));
    } else {
      p = seeds[rng() % std::size(seeds)];
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !p.empty(); ++e) {
        const size_t at = rng() % p.size();
        switch (rng() % 3) {
          case 0:
            p[at] = static_cast<char>(rng());
            break;
          case 1:
            p.resize(at);
            break;
          default:
            p.insert(at, 1, static_cast<char>(rng()));
            break;
        }
      }
    }
    SCOPED_TRACE(testing::PrintToString(p));
    const uint64_t host_accesses = host_ram.reads() + host_ram.writes();
    const uint64_t fw_accesses = fw_ram.reads() + fw_ram.writes();
    bool host_parsed = false;
    const v1::DeviceResponse h = Host(p, &host_parsed);
    Reply reply;
    const v1::DeviceResponse f = Firmware(Frame(p), &reply);
    if (reply.parsed) {
      ASSERT_TRUE(host_parsed) << "the firmware accepted what libprotobuf refuses";
      ExpectSame(h, f);
      ++agreed;
    } else {
      EXPECT_EQ(f.status(), v1::DEVICE_BAD_REQUEST);
      EXPECT_EQ(f.tag(), 0u);
      ASSERT_EQ(fw_ram.reads() + fw_ram.writes(), fw_accesses) << "touched the bus";
      if (host_parsed) {
        ASSERT_TRUE(Divergent(p, Kind::kRequest)) << "refused a request the spec accepts";
        ++divergent;
        // The host alone ran it: bring the firmware's memory level again.
        fw_ram.Poke(kBase, host_ram.Peek(kBase, kWindow));
        counters_in_step_ = false;
        continue;
      }
      ++refused_both;
    }
    ASSERT_EQ(host_ram.reads() + host_ram.writes() - host_accesses,
              fw_ram.reads() + fw_ram.writes() - fw_accesses);
  }
  // The spread really covers all three outcomes.
  EXPECT_GT(agreed, 500);
  EXPECT_GT(refused_both, 500);
  EXPECT_GT(divergent, 0);
  std::printf("garbage: %d agreed, %d refused by both, %d documented divergences\n", agreed,
              refused_both, divergent);
}

}  // namespace
}  // namespace dmahil::firmware::wire
