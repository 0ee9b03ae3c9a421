#include "common/framing.h"

#include <fmt/format.h>
#include <google/protobuf/message_lite.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <vector>

namespace dmahil::framing {
namespace {

using Kind = FramingError::Kind;

void PutLe32(uint32_t v, uint8_t* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Reads exactly `len` bytes into `dst`; `what` names the part and `done` / `total` place
// these bytes in it (bytes), for messages. Returns false on a clean EOF before any byte of
// the part was read when `eof_ok`.
bool ReadExactly(boost::asio::ip::tcp::socket& socket, void* dst, size_t len, bool eof_ok,
                 const char* what, size_t done, size_t total) {
  boost::system::error_code ec;
  const size_t got = boost::asio::read(socket, boost::asio::buffer(dst, len), ec);
  if (!ec) return true;
  if (ec == boost::asio::error::eof) {
    if (done + got == 0 && eof_ok) return false;
    throw FramingError(Kind::kTruncated,
                       fmt::format("stream ended inside a frame {} ({} of {} bytes read)", what,
                                   done + got, total));
  }
  throw FramingError(Kind::kIo, fmt::format("reading frame {}: {}", what, ec.message()));
}

}  // namespace

std::string EncodeFrame(const google::protobuf::MessageLite& msg) {
  const size_t size = msg.ByteSizeLong();
  if (size > kMaxFramePayload) {
    throw FramingError(Kind::kOversize,
                       fmt::format("{} message of {} bytes exceeds the {}-byte frame limit",
                                   msg.GetTypeName(), size, kMaxFramePayload));
  }
  std::string frame(kHeaderBytes + size, '\0');
  PutLe32(static_cast<uint32_t>(size), reinterpret_cast<uint8_t*>(frame.data()));
  if (!msg.SerializeToArray(frame.data() + kHeaderBytes, static_cast<int>(size))) {
    throw FramingError(Kind::kParse, fmt::format("cannot serialize {}", msg.GetTypeName()));
  }
  return frame;
}

uint32_t DecodeFrameHeader(const void* header) {
  const auto* p = static_cast<const uint8_t*>(header);
  uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= uint32_t{p[i]} << (8 * i);
  if (len > kMaxFramePayload) {
    throw FramingError(Kind::kOversize, fmt::format("frame length {} exceeds the {}-byte limit",
                                                    len, kMaxFramePayload));
  }
  return len;
}

size_t NextPayloadCapacity(size_t received, size_t announced) noexcept {
  return std::min(announced, std::max(received + kReadChunkBytes, 2 * received));
}

void ParseFramePayload(std::string_view payload, google::protobuf::MessageLite& out) {
  out.Clear();
  if (!out.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    throw FramingError(Kind::kParse, fmt::format("frame payload of {} bytes is not a valid {}",
                                                 payload.size(), out.GetTypeName()));
  }
}

size_t DecodeFrame(std::string_view buffer, google::protobuf::MessageLite& out) {
  if (buffer.size() < kHeaderBytes) return 0;
  const uint32_t len = DecodeFrameHeader(buffer.data());
  if (buffer.size() - kHeaderBytes < len) return 0;
  ParseFramePayload(buffer.substr(kHeaderBytes, len), out);
  return kHeaderBytes + len;
}

void WriteFrame(boost::asio::ip::tcp::socket& socket, const google::protobuf::MessageLite& msg) {
  const std::string frame = EncodeFrame(msg);
  boost::system::error_code ec;
  boost::asio::write(socket, boost::asio::buffer(frame), ec);
  if (ec) throw FramingError(Kind::kIo, fmt::format("writing frame: {}", ec.message()));
}

void ReadFrame(boost::asio::ip::tcp::socket& socket, google::protobuf::MessageLite& out) {
  std::array<uint8_t, kHeaderBytes> header{};
  if (!ReadExactly(socket, header.data(), header.size(), /*eof_ok=*/true, "header", 0,
                   header.size())) {
    throw FramingError(Kind::kEof, "peer closed the stream");
  }
  const uint32_t len = DecodeFrameHeader(header.data());
  // Grow with the bytes received, never with the announced length alone.
  std::vector<char> payload;
  while (payload.size() < len) {
    const size_t received = payload.size();
    const size_t piece = std::min<size_t>(kReadChunkBytes, len - received);
    if (payload.capacity() < received + piece) {
      payload.reserve(NextPayloadCapacity(received, len));
    }
    payload.resize(received + piece);
    ReadExactly(socket, payload.data() + received, piece, /*eof_ok=*/false, "payload", received,
                len);
  }
  ParseFramePayload(std::string_view(payload.data(), payload.size()), out);
}

}  // namespace dmahil::framing
