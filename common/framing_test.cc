#include "common/framing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "common/largest_allocation_test_support.h"
#include "dmahil/v1/device.pb.h"

namespace dmahil::framing {
namespace {

using dmahil::testing::LargestAllocation;

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

v1::DeviceRequest WriteRequest(uint64_t tag, size_t bytes) {
  v1::DeviceRequest req;
  req.set_tag(tag);
  std::string data(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>(i * 13 + tag);
  req.mutable_write()->set_data(std::move(data));
  return req;
}

TEST(FramingCapacity, GrowsWithTheBytesReceivedNeverPastTheAnnouncedLength) {
  EXPECT_EQ(NextPayloadCapacity(0, kMaxFramePayload), kReadChunkBytes);
  EXPECT_EQ(NextPayloadCapacity(0, 10), 10u);
  EXPECT_EQ(NextPayloadCapacity(kReadChunkBytes, kMaxFramePayload), 2 * kReadChunkBytes);
  EXPECT_EQ(NextPayloadCapacity(100'000, kMaxFramePayload), 200'000u);
  EXPECT_EQ(NextPayloadCapacity(10u << 20, kMaxFramePayload), kMaxFramePayload);
  // Reading a whole 16 MiB payload the way ReadFrame does: every read fits, the buffer
  // stays within max(2 x received, received + one read), and it is reallocated rarely.
  std::vector<char> buf;
  size_t reallocations = 0;
  for (size_t got = 0; got < kMaxFramePayload;) {
    const size_t piece = std::min<size_t>(kReadChunkBytes, kMaxFramePayload - got);
    if (buf.capacity() < got + piece) {
      buf.reserve(NextPayloadCapacity(got, kMaxFramePayload));
      ++reallocations;
    }
    ASSERT_GE(buf.capacity(), got + piece);
    ASSERT_LE(buf.capacity(), std::max(2 * got, got + kReadChunkBytes));
    got += piece;
  }
  EXPECT_EQ(buf.capacity(), kMaxFramePayload);
  EXPECT_LE(reallocations, 10u);
}

TEST(FramingSocket, ReadsFramesArrivingInPieces) {
  SocketPair s;
  // Payloads around the 64 KiB reads: empty, one byte, just under, at, and over them.
  const std::vector<v1::DeviceRequest> sent = {
      v1::DeviceRequest(),
      WriteRequest(1, 1),
      WriteRequest(2, kReadChunkBytes - 8),
      WriteRequest(3, kReadChunkBytes),
      WriteRequest(4, 3 * kReadChunkBytes + 5),
  };
  std::string stream;
  for (const auto& req : sent) stream += EncodeFrame(req);
  std::thread writer([&] {
    const size_t pieces[] = {1, 3, 4, 7, 1000, kReadChunkBytes + 1, 12'345};
    boost::system::error_code ec;
    for (size_t off = 0, i = 0; off < stream.size() && !ec; ++i) {
      const size_t n = std::min(pieces[i % std::size(pieces)], stream.size() - off);
      boost::asio::write(s.a, boost::asio::buffer(stream.data() + off, n), ec);
      off += n;
      if (i % 3 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (size_t i = 0; i < sent.size(); ++i) {
    v1::DeviceRequest out;
    try {
      ReadFrame(s.b, out);
    } catch (const FramingError& e) {
      ADD_FAILURE() << "frame " << i << ": " << e.what();
      break;
    }
    EXPECT_EQ(out.SerializeAsString(), sent[i].SerializeAsString()) << "frame " << i;
  }
  s.b.close();  // lets the writer end even if a read failed
  writer.join();
}

TEST(FramingSocket, ReadsTheLargestFrameWithoutAllocatingPastIt) {
  SocketPair s;
  const v1::DeviceRequest req = WriteRequest(5, kMaxFramePayload - 16);
  const std::string frame = EncodeFrame(req);
  const size_t payload = frame.size() - kHeaderBytes;
  ASSERT_LE(payload, kMaxFramePayload);
  std::thread writer([&] {
    boost::system::error_code ec;
    boost::asio::write(s.a, boost::asio::buffer(frame), ec);
  });
  v1::DeviceRequest out;
  size_t largest = 0;
  {
    LargestAllocation track;
    ReadFrame(s.b, out);
    largest = track.bytes();
  }
  writer.join();
  EXPECT_TRUE(out.write().data() == req.write().data());
  EXPECT_EQ(out.tag(), 5u);
  EXPECT_LE(largest, payload);  // the buffer never outgrows the announced length
}

// Audit: ReadFrame allocated the announced length (up to 16 MiB) before reading.
TEST(FramingSocket, HeaderAnnouncingTheMaximumThenEofIsTruncatedWithoutReservingIt) {
  SocketPair s;
  const std::string bytes = std::string("\x00\x00\x00\x01", 4) + "0123456789";  // 16 MiB
  boost::asio::write(s.a, boost::asio::buffer(bytes));
  s.a.close();
  v1::DeviceRequest out;
  Kind kind = Kind::kIo;
  std::string what;
  size_t largest = 0;
  {
    LargestAllocation track;
    try {
      ReadFrame(s.b, out);
    } catch (const FramingError& e) {
      kind = e.kind();
      what = e.what();
    }
    largest = track.bytes();
  }
  EXPECT_EQ(kind, Kind::kTruncated) << what;
  EXPECT_NE(what.find("10 of 16777216 bytes"), std::string::npos) << what;
  EXPECT_GT(largest, 0u);  // the tracking works: the first read's buffer was seen
  EXPECT_LE(largest, kReadChunkBytes) << "allocated " << largest << " bytes for 10 received";
}

TEST(FramingSocket, GarbagePayloadIsParseError) {
  SocketPair s;
  boost::asio::write(s.a, boost::asio::buffer("\x03\x00\x00\x00\x0f\xff\xff", 7));
  v1::DeviceRequest out;
  EXPECT_EQ(KindOf([&] { ReadFrame(s.b, out); }), Kind::kParse);
}

}  // namespace
}  // namespace dmahil::framing
