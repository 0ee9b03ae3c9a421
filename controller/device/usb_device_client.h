// DeviceClient over USB bulk endpoints (docs/architecture.md §10): the hardware DMA engine,
// speaking the same device protocol (proto/dmahil/v1/device.proto, frames of common/framing.h) as
// the TCP transport of virtual boards.
//
// USB framing (docs/device-protocol.md): the host writes one request frame (4-byte LE
// length + payload) to bulk OUT in transfers of at most 1 MiB; if the frame's length is a
// multiple of the OUT wMaxPacketSize, a zero-length packet (ZLP) follows. The device
// answers with exactly one response frame on bulk IN the same way (ZLP when its length is
// a multiple of the IN wMaxPacketSize). One request in flight at a time; the host reads
// bulk IN in buffers that are multiples of wMaxPacketSize until it has the header and the
// whole payload.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/problems.h"
#include "controller/device/device_client.h"
#include "controller/device/usb_bulk_port.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::controller {

/// Largest bulk transfer the client issues, bytes (rounded down to a multiple of the
/// endpoint's packet size, so only a frame's last transfer can end in a short packet).
inline constexpr size_t kUsbMaxTransferBytes = 1u << 20;

/// Timeouts and reconnection of a UsbDeviceClient.
struct UsbClientOptions {
  /// Bounds each Transact (request out, device work, response in), ms; every bulk
  /// transfer gets what is left of it. 0 means 5000 (UsbEngine.timeout_ms).
  uint32_t timeout_ms = 5000;
  /// Open attempts when the port has to be reopened (after the device went away or a
  /// failed Transact), >= 1.
  uint32_t reopen_attempts = 5;
  /// Wait before the second attempt, ms; doubled after each further failure, at most
  /// reopen_backoff_max_ms. Defaults: waits of 100, 200, 400, 800 ms, 1.5 s in all.
  uint32_t reopen_backoff_ms = 100;
  uint32_t reopen_backoff_max_ms = 1000;
  /// Poll of a drain of stale IN data (see Transact), ms.
  uint32_t drain_poll_ms = 50;
};

/// A DMA engine on USB. Owns its port. Not thread-safe: one request at a time.
///
/// Failures and recovery (every DeviceError message starts with the port's name, e.g.
/// "usb 1d50:6170 serial X: "):
/// - Any failed Transact closes the port; the next Transact reopens it (up to
///   reopen_attempts Open calls with backoff; DeviceError with the last Open error and
///   the attempt count if all fail). Before sending, a reopened port is resynchronised:
///   if the failed request was cut off inside its frame, a ZLP ends that frame on the
///   device; if that request reached the device, stale IN data (its late response, or
///   the device's answer to the cut-off frame) is drained until a drain_poll_ms poll
///   finds nothing, and a response carrying the failed request's tag is skipped if it
///   arrives later still.
/// - LIBUSB_ERROR_NO_DEVICE before any byte of the request was sent (the device was
///   unplugged or power-cycled while idle): the port is reopened as above and the request
///   sent once more, so the caller sees no error if the device comes back in time. Only
///   once, and never when part of the request had gone out or the device vanished while
///   working on it or answering (IN): although every op is idempotent (reads, and writes
///   of given bytes or a given pattern to fixed addresses), a device that reset in the
///   middle of an op has lost state the fixture relies on (its DMA may have half
///   happened), so that is a DeviceError ("... not retried"), an infrastructure error
///   for the runner to handle, never a silently repeated op.
/// - Timeouts, stalls (LIBUSB_ERROR_PIPE, halt cleared by the port), overflow, a short
///   or over-long response frame, an oversize length, an unparsable payload or a wrong
///   tag: DeviceError, not retried.
/// - A response with tag 0 and DEVICE_BAD_REQUEST (the device's answer to a frame it
///   could not read, docs/device-protocol.md §6): DeviceError carrying the device's
///   message ("... the device answered a frame it could not read (tag 0,
///   DEVICE_BAD_REQUEST) instead of request tag N: <message>"), not retried; recovered
///   like a wrong tag (the next Transact reopens, drains, and skips a late answer to tag N).
class UsbDeviceClient final : public DeviceClient {
 public:
  /// Opens `port` once (no retries). Throws DeviceError "<name>: <Open message>", e.g.
  /// "usb 1d50:6170 serial X: no such device (0 devices with this vid:pid)", or if the
  /// port reports a packet size of 0.
  explicit UsbDeviceClient(std::unique_ptr<UsbBulkPort> port, const UsbClientOptions& options = {});
  ~UsbDeviceClient() override;

  UsbDeviceClient(const UsbDeviceClient&) = delete;
  UsbDeviceClient& operator=(const UsbDeviceClient&) = delete;

  /// Sends `request` and waits for its response. A request with tag 0 gets the next tag
  /// of this client's counter; the response must echo the tag. Throws DeviceError (see
  /// the class comment) when no valid response could be had, or if the request's frame
  /// would exceed 16 MiB (nothing is sent then).
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override;

  /// The port's name, as used in error messages ("usb 1d50:6170 serial X").
  std::string name() const;
  /// Successful reopens of the port after it was closed by a failure (for logs/tests).
  uint64_t reopens() const { return reopens_; }

 private:
  using Clock = std::chrono::steady_clock;

  [[noreturn]] void Fail(const std::string& what) const;
  // Opens the port once; on failure returns the result. Checks the packet sizes.
  UsbResult OpenOnce();
  // Reopens a closed port (bounded retries) and resynchronises it; throws DeviceError.
  void EnsureReady();
  // Sends `frame` by the framing rule; `sent` counts the bytes that went out.
  UsbResult SendFrame(const std::string& frame, Clock::time_point deadline, size_t& sent,
                      std::string& step);
  // Reads one response frame by the framing rule into `frame` (header included).
  // Throws DeviceError (after closing the port) on any failure.
  void ReceiveFrame(std::string& frame, Clock::time_point deadline, uint64_t tag);
  // Closes the port after a failure in `step` and throws a DeviceError describing `r`.
  [[noreturn]] void FailTransfer(const std::string& step, const UsbResult& r, uint64_t tag);
  // Reads and discards IN data until a poll finds none.
  void Drain();
  // ms left until `deadline`, rounded up; 0 if it has passed.
  static uint32_t MsLeft(Clock::time_point deadline);

  std::unique_ptr<UsbBulkPort> port_;
  UsbClientOptions options_;
  std::chrono::milliseconds timeout_;
  uint64_t next_tag_ = 0;
  uint64_t reopens_ = 0;
  bool out_partial_ = false;           // the device may hold an unterminated request frame
  bool in_stale_ = false;              // the device may still send a response nobody waits for
  std::optional<uint64_t> stale_tag_;  // the tag of that response
};

/// The USB DMA engine of a board's wiring (farm file): a LibusbBulkPort for `engine`
/// under a UsbDeviceClient with timeout engine.timeout_ms (0: 5000) and the default
/// reconnection options, opened once. Throws DeviceError naming the device, without
/// retrying: bad wiring ("usb 1d50:6170: bad USB wiring: ep_in 0x02 is not a bulk IN
/// endpoint address ..."), libusb_init failing, no device ("usb 1d50:6170 serial X: no
/// such device (0 devices with this vid:pid)"), several and no serial, no access
/// (LIBUSB_ERROR_ACCESS), a busy interface (LIBUSB_ERROR_BUSY), or missing or non-bulk
/// endpoints.
std::unique_ptr<UsbDeviceClient> MakeUsbDeviceClient(const v1::UsbEngine& engine);

/// Checks a farm's USB engine wiring as MakeUsbDeviceClient uses it; `path` is its field
/// path in the farm file (e.g. "board[0].wiring.engine"): vid and pid nonzero 16-bit ids;
/// ep_out an OUT and ep_in an IN bulk endpoint address (bEndpointAddress, USB 2.0 §9.6.6:
/// number 1..15 in bits 3..0, bit 0x80 set for IN, bits 6..4 zero); interface 0..255. The
/// engine (vid:pid and serial, or any serial) is claimed in `claims` as "USB engine ..."
/// (two boards cannot share one). Adds each problem to `problems` (the farm file's).
void ValidateUsbEngine(const v1::UsbEngine& engine, const std::string& path, Problems& problems,
                       Claims& claims);

}  // namespace dmahil::controller
