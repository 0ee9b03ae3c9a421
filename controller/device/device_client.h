// The controller's view of a DMA engine (docs/architecture.md §3, §8): the narrow interface behind
// which the TCP client (virtual and networked engines) and, later, the libusb client of
// hardware engines sit.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "dmahil/v1/device.pb.h"

namespace dmahil::controller {

/// A transport failure talking to a device: cannot connect, connection lost, timeout,
/// malformed response. The message names the device (e.g. "127.0.0.1:5000").
class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What a stream transport sends for `request`: the request with its tag (a request with
/// tag 0 gets ++*next_tag, so the response can be matched) and its frame
/// (common/framing.h). Throws DeviceError "<device>: ..." if it is too large to frame.
struct FramedRequest {
  v1::DeviceRequest request;
  std::string frame;
};
FramedRequest FrameRequest(const v1::DeviceRequest& request, uint64_t& next_tag,
                           std::string_view device);

/// A DMA engine. Every op returns the device's response: a refused or failed op is a
/// response with status DEVICE_BAD_REQUEST or DEVICE_BUS_ERROR (and a message), not an
/// exception. Transports throw DeviceError when no valid response could be obtained.
/// Not thread-safe: one op at a time.
class DeviceClient {
 public:
  virtual ~DeviceClient() = default;

  /// Sends one request and returns its response. Implementations: a transport, or a
  /// wrapper (see GuardedDeviceClient). The op helpers below all go through it.
  virtual v1::DeviceResponse Transact(const v1::DeviceRequest& request) = 0;

  /// The engine's identity and limits (response.info).
  v1::DeviceResponse Info();
  /// Reads `length` bytes (1..1 MiB) at bus address `bus_addr` (response.data).
  v1::DeviceResponse Read(uint64_t bus_addr, uint32_t length);
  /// Writes `bytes` (1..1 MiB) at bus address `bus_addr`.
  v1::DeviceResponse Write(uint64_t bus_addr, std::string_view bytes);
  /// Fills `length` bytes at `bus_addr` with pattern lines of `pattern`; `bus_addr` is
  /// line aligned, `length` a multiple of pattern.line_size, at most 16 MiB.
  v1::DeviceResponse Fill(uint64_t bus_addr, uint32_t length, const v1::PatternSpec& pattern);
  /// Checks `length` bytes at `bus_addr` against `pattern` (response.check), returning at
  /// most `max_findings` findings (0: the device default, 256).
  v1::DeviceResponse Check(uint64_t bus_addr, uint32_t length, const v1::PatternSpec& pattern,
                           uint32_t max_findings = 0);
};

}  // namespace dmahil::controller
