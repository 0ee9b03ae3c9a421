#include "common/framing.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <functional>
#include <string>

#include "dmahil/v1/device.pb.h"

namespace dmahil::framing {
namespace {

using Kind = FramingError::Kind;

v1::DeviceRequest SampleRequest() {
  v1::DeviceRequest req;
  req.set_tag(42);
  auto* fill = req.mutable_fill();
  fill->set_bus_addr(0x8000'0000);
  fill->set_length(4096);
  fill->mutable_pattern()->set_seed(7);
  fill->mutable_pattern()->set_line_size(64);
  return req;
}

Kind KindOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const FramingError& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no FramingError thrown";
  return Kind::kIo;
}

TEST(FramingEncode, RoundTripWithLittleEndianLength) {
  const v1::DeviceRequest req = SampleRequest();
  const std::string frame = EncodeFrame(req);
  const size_t size = req.ByteSizeLong();
  ASSERT_EQ(frame.size(), kHeaderBytes + size);
  EXPECT_EQ(static_cast<uint8_t>(frame[0]), size & 0xFF);
  EXPECT_EQ(static_cast<uint8_t>(frame[1]), (size >> 8) & 0xFF);
  EXPECT_EQ(frame[2], 0);
  EXPECT_EQ(frame[3], 0);

  v1::DeviceRequest out;
  EXPECT_EQ(DecodeFrame(frame, out), frame.size());
  EXPECT_EQ(out.SerializeAsString(), req.SerializeAsString());
}

TEST(FramingEncode, EmptyMessageIsAHeaderOnly) {
  const std::string frame = EncodeFrame(v1::DeviceRequest());
  EXPECT_EQ(frame, std::string(4, '\0'));
  v1::DeviceRequest out = SampleRequest();
  EXPECT_EQ(DecodeFrame(frame, out), 4u);
  EXPECT_EQ(out.op_case(), v1::DeviceRequest::OP_NOT_SET);
}

TEST(FramingEncode, BackToBackFrames) {
  v1::DeviceRequest a = SampleRequest();
  v1::DeviceRequest b;
  b.set_tag(9);
  b.mutable_info();
  const std::string stream = EncodeFrame(a) + EncodeFrame(b);
  v1::DeviceRequest out;
  const size_t used = DecodeFrame(stream, out);
  EXPECT_EQ(out.tag(), 42u);
  EXPECT_EQ(DecodeFrame(std::string_view(stream).substr(used), out), stream.size() - used);
  EXPECT_EQ(out.tag(), 9u);
  EXPECT_TRUE(out.has_info());
}

TEST(FramingEncode, OversizeMessageRefused) {
  v1::DeviceRequest req;
  req.mutable_write()->set_data(std::string(kMaxFramePayload, 'x'));
  EXPECT_EQ(KindOf([&] { EncodeFrame(req); }), Kind::kOversize);
}

TEST(FramingDecode, TruncatedBufferIsIncomplete) {
  const std::string frame = EncodeFrame(SampleRequest());
  for (size_t n = 0; n < frame.size(); ++n) {
    v1::DeviceRequest out;
    EXPECT_EQ(DecodeFrame(std::string_view(frame).substr(0, n), out), 0u) << "prefix " << n;
  }
}

TEST(FramingDecode, OversizeHeaderRefused) {
  const uint8_t at_limit[4] = {0x00, 0x00, 0x00, 0x01};  // exactly 16 MiB
  EXPECT_EQ(DecodeFrameHeader(at_limit), kMaxFramePayload);
  const uint8_t over[4] = {0x01, 0x00, 0x00, 0x01};
  EXPECT_EQ(KindOf([&] { DecodeFrameHeader(over); }), Kind::kOversize);
  const std::string frame("\xff\xff\xff\xff", 4);
  v1::DeviceRequest out;
  EXPECT_EQ(KindOf([&] { DecodeFrame(frame, out); }), Kind::kOversize);
}

TEST(FramingDecode, GarbagePayloadRefused) {
  // Field 1 with wire type 7 (there is no such wire type), then a truncated varint.
  const std::string garbage("\x0f\xff\xff", 3);
  v1::DeviceRequest out;
  EXPECT_EQ(KindOf([&] { ParseFramePayload(garbage, out); }), Kind::kParse);
  std::string frame("\x03\x00\x00\x00", 4);
  frame += garbage;
  EXPECT_EQ(KindOf([&] { DecodeFrame(frame, out); }), Kind::kParse);
}

// A connected loopback socket pair.
struct SocketPair {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket a{io};
  boost::asio::ip::tcp::socket b{io};
  SocketPair() {
    boost::asio::ip::tcp::acceptor acceptor(
        io, boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
    a.connect(acceptor.local_endpoint());
    acceptor.accept(b);
  }
};

TEST(FramingSocket, WriteThenRead) {
  SocketPair s;
  WriteFrame(s.a, SampleRequest());
  v1::DeviceRequest out;
  ReadFrame(s.b, out);
  EXPECT_EQ(out.tag(), 42u);
  EXPECT_EQ(out.fill().length(), 4096u);
}

TEST(FramingSocket, CleanCloseIsEof) {
  SocketPair s;
  s.a.close();
  v1::DeviceRequest out;
  EXPECT_EQ(KindOf([&] { ReadFrame(s.b, out); }), Kind::kEof);
}

TEST(FramingSocket, CloseInsideFrameIsTruncated) {
  SocketPair s;
  const std::string frame = EncodeFrame(SampleRequest());
  boost::asio::write(s.a, boost::asio::buffer(frame.data(), frame.size() - 3));
  s.a.close();
  v1::DeviceRequest out;
  EXPECT_EQ(KindOf([&] { ReadFrame(s.b, out); }), Kind::kTruncated);
}

TEST(FramingSocket, OversizeHeaderRefusedWithoutReadingPayload) {
  SocketPair s;
  boost::asio::write(s.a, boost::asio::buffer("\xff\xff\xff\x7f", 4));
  v1::DeviceRequest out;
  EXPECT_EQ(KindOf([&] { ReadFrame(s.b, out); }), Kind::kOversize);
}

TEST(FramingSocket, GarbagePayloadIsParseError) {
  SocketPair s;
  boost::asio::write(s.a, boost::asio::buffer("\x03\x00\x00\x00\x0f\xff\xff", 7));
  v1::DeviceRequest out;
  EXPECT_EQ(KindOf([&] { ReadFrame(s.b, out); }), Kind::kParse);
}

}  // namespace
}  // namespace dmahil::framing
