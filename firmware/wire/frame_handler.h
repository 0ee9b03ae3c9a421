// The firmware's side of the DMA device protocol (docs/device-protocol.md,
// proto/dmahil/v1/device.proto): takes one received request frame, decodes the
// DeviceRequest with nanopb, runs it on the CommandProcessor and encodes the DeviceResponse
// frame into a caller-provided buffer.
//
// Freestanding like the engine: no exceptions, no RTTI, no heap, no iostream. Write data
// is not copied (the engine reads it from the received frame); Read data and Check
// findings go through fixed buffers inside the handler; messages are static strings.
// The host build has its own, libprotobuf-based codec with detailed messages
// (firmware/host/codec.h); both answer every request with the same status, tag, data,
// fault address, check counts and findings (firmware/wire/frame_handler_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/pattern.h"
#include "firmware/engine.h"

namespace dmahil::firmware::wire {

/// Bytes of a frame's length prefix (a little-endian uint32 payload length).
inline constexpr uint32_t kFrameHeaderBytes = 4;
/// Largest payload (bytes, header excluded) a frame may announce (common/framing.h).
inline constexpr uint32_t kMaxFramePayload = 16u << 20;
/// Largest payload of a valid request, bytes: a WriteOp of kMaxDataBytes plus its tag,
/// bus address and field headers (at most 33 bytes; rounded up). A transport may size its
/// receive buffer to kFrameHeaderBytes + this (docs/device-protocol.md, "Receive buffer").
inline constexpr uint32_t kMaxValidRequestPayload = kMaxDataBytes + 64;
/// Upper bound of a response payload, bytes: a Read of kMaxDataBytes plus the other
/// fields (a Check of kMaxFindings findings is at most ~140 KiB).
inline constexpr uint32_t kMaxResponsePayload = kMaxDataBytes + 1024;
/// Output buffer a caller must provide to the handler, bytes.
inline constexpr uint32_t kMaxResponseFrameBytes = kFrameHeaderBytes + kMaxResponsePayload;

/// The payload length (bytes) a frame header announces: `header` points at
/// kFrameHeaderBytes bytes, read as a little-endian uint32. Not checked against
/// kMaxFramePayload.
uint32_t DecodeFrameLength(const uint8_t* header);

/// Writes `payload_len` as a little-endian uint32 to `header` (kFrameHeaderBytes bytes).
void EncodeFrameLength(uint32_t payload_len, uint8_t* header);

/// What the handler did with one frame.
struct Reply {
  /// Bytes of the response frame (header + payload) written to the output buffer; 0 only
  /// if the output buffer was smaller than kMaxResponseFrameBytes (nothing was done).
  size_t size = 0;
  /// The frame was a whole, decodable DeviceRequest (whatever its status). False: the
  /// response is DEVICE_BAD_REQUEST with tag 0 and the bus was not touched.
  bool parsed = false;
  /// Status of the response (kBadRequest when !parsed).
  Status status = Status::kBadRequest;
};

/// Executes device-protocol frames on a CommandProcessor. One frame at a time (not
/// thread-safe). Holds a kMaxDataBytes Read buffer and a kMaxFindings findings array,
/// about 1.1 MiB: give it static storage on a device.
class FrameHandler {
 public:
  /// `engine` must outlive the handler.
  explicit FrameHandler(CommandProcessor& engine);

  FrameHandler(const FrameHandler&) = delete;
  FrameHandler& operator=(const FrameHandler&) = delete;

  /// Handles one whole received frame (`frame_len` bytes: the 4-byte little-endian length
  /// and the payload, as delimited by the transport) and writes the response frame to
  /// `out` (`out_capacity` bytes, at least kMaxResponseFrameBytes, else nothing is done
  /// and size is 0). A frame shorter than its header, announcing more than
  /// kMaxFramePayload bytes or a length other than frame_len - 4, or whose payload is not
  /// a DeviceRequest nanopb can decode, is answered DEVICE_BAD_REQUEST with tag 0 without
  /// touching the bus. Otherwise see HandlePayload. Never fails otherwise.
  Reply HandleFrame(const uint8_t* frame, size_t frame_len, uint8_t* out, size_t out_capacity);

  /// Handles one request payload (`payload_len` bytes, header already stripped) and writes
  /// the response frame to `out` as HandleFrame does. A decoded request gets its tag
  /// echoed and the engine's status: DEVICE_OK, DEVICE_BUS_ERROR with fault_addr, or
  /// DEVICE_BAD_REQUEST (no op set, or the engine's Reject reason) with a static message.
  Reply HandlePayload(const uint8_t* payload, size_t payload_len, uint8_t* out,
                      size_t out_capacity);

  /// Writes a DEVICE_BAD_REQUEST response frame with tag 0 and message `why` (a static
  /// string) to `out`, for a frame the transport could not receive whole (e.g. a length
  /// prefix above kMaxFramePayload on USB, or a frame larger than its receive buffer).
  /// Same buffer rule as HandleFrame.
  Reply Refuse(const char* why, uint8_t* out, size_t out_capacity);

 private:
  CommandProcessor& engine_;
  alignas(8) uint8_t read_buf_[kMaxDataBytes];
  pattern::Finding findings_[kMaxFindings];
};

}  // namespace dmahil::firmware::wire
