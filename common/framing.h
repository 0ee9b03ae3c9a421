// Stream framing of the DMA device protocol (proto/dmahil/v1/device.proto, docs/architecture.md
// §10): each message on a byte stream is a 4-byte little-endian payload length followed by the
// serialized protobuf message. Frames whose payload exceeds kMaxFramePayload (16 MiB)
// are refused on both sides.
//
// Errors are reported by throwing FramingError; its kind() says which failure it was, so
// a server can tell a client that hung up (kEof) from one that sent garbage.
//
// Readers never reserve memory for an announced length before the bytes arrive: a
// payload is read in pieces of at most kReadChunkBytes into a buffer that grows with the
// bytes received (NextPayloadCapacity), so a peer that sends a header announcing 16 MiB
// and nothing else costs one chunk, not 16 MiB.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace google::protobuf {
class MessageLite;
}

namespace dmahil::framing {

/// Bytes of the length prefix.
inline constexpr size_t kHeaderBytes = 4;
/// Largest accepted payload (bytes), header excluded.
inline constexpr uint32_t kMaxFramePayload = 16u * 1024u * 1024u;
/// Largest piece (bytes) of a payload that a reader asks the stream for at a time.
inline constexpr size_t kReadChunkBytes = 64u * 1024u;

/// A framing failure. what() is a one-line, human-readable description.
class FramingError : public std::runtime_error {
 public:
  enum class Kind {
    kEof,        // the peer closed the stream cleanly between frames
    kTruncated,  // the stream or buffer ended inside a frame
    kOversize,   // a length prefix (or a message to send) above kMaxFramePayload
    kParse,      // the payload is not a valid serialized message of the expected type
    kIo,         // a socket error other than end of stream
  };
  FramingError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  /// Which failure this is.
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
};

/// Serializes `msg` into one frame (header + payload).
/// Throws FramingError(kOversize) if the payload would exceed kMaxFramePayload.
std::string EncodeFrame(const google::protobuf::MessageLite& msg);

/// Decodes a length prefix: `header` must point at kHeaderBytes bytes. Returns the
/// payload length in bytes. Throws FramingError(kOversize) above kMaxFramePayload.
uint32_t DecodeFrameHeader(const void* header);

/// The capacity (bytes) to give a payload buffer that holds `received` of the `announced`
/// payload bytes (received < announced) and is too small for the next read of
/// min(kReadChunkBytes, announced - received) bytes: max(received + kReadChunkBytes,
/// 2 * received), capped at `announced`. So a buffer grows with the bytes received, in
/// amortised O(1) copies per byte, is never larger than max(2 * received, received +
/// kReadChunkBytes) and never larger than `announced`. Does not throw.
size_t NextPayloadCapacity(size_t received, size_t announced) noexcept;

/// Parses a frame payload (header already stripped) into `out` (cleared first).
/// Throws FramingError(kParse) if it is not a valid `out` message.
void ParseFramePayload(std::string_view payload, google::protobuf::MessageLite& out);

/// Decodes the first frame of `buffer` into `out`. Returns the bytes consumed (header +
/// payload), or 0 if `buffer` does not yet hold a whole frame (nothing is parsed then).
/// Throws FramingError(kOversize) or FramingError(kParse).
size_t DecodeFrame(std::string_view buffer, google::protobuf::MessageLite& out);

/// Writes `msg` as one frame to `socket`, blocking until it is all sent.
/// Throws FramingError(kOversize) before sending anything if it is too large, or
/// FramingError(kIo) on a socket error.
void WriteFrame(boost::asio::ip::tcp::socket& socket, const google::protobuf::MessageLite& msg);

/// Reads one frame from `socket` into `out`, blocking until it is complete. The payload is
/// read in pieces of at most kReadChunkBytes into a buffer that grows with the bytes
/// received (NextPayloadCapacity), so memory follows the bytes that actually arrive, not
/// the announced length.
/// Throws FramingError: kEof if the peer closed the stream before the first header byte,
/// kTruncated if it closed inside a frame, kOversize for a length prefix above
/// kMaxFramePayload (the payload is not read; the stream is then unusable), kParse for
/// an invalid payload, kIo for other socket errors.
void ReadFrame(boost::asio::ip::tcp::socket& socket, google::protobuf::MessageLite& out);

}  // namespace dmahil::framing
