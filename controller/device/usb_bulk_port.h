// The bulk-transfer layer under the USB DMA-engine client (docs/architecture.md §10): one claimed
// interface of one USB device with a bulk OUT and a bulk IN endpoint. The real one is
// LibusbBulkPort (usb_libusb_port.h); tests use a fake device behind the same interface,
// so everything above the bulk-transfer calls is tested without hardware.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dmahil::controller {

/// Outcome of a port operation, mirroring the libusb error codes that matter to a bulk
/// client (libusb_error): LIBUSB_SUCCESS, LIBUSB_ERROR_TIMEOUT, LIBUSB_ERROR_NO_DEVICE,
/// LIBUSB_ERROR_PIPE, LIBUSB_ERROR_OVERFLOW; everything else is kOther.
enum class UsbStatus : uint8_t {
  kOk,
  kTimeout,   // the transfer did not complete in time (some bytes may have moved)
  kNoDevice,  // the device is gone (unplugged, power-cycled) or, from Open, not found
  kPipe,      // the endpoint halted (stall)
  kOverflow,  // the device sent more than the buffer holds
  kOther,     // anything else: access denied, busy interface, bad wiring, I/O error
};

/// "ok", "timeout", "no-device", "pipe", "overflow" or "other".
const char* UsbStatusName(UsbStatus status);

/// The result of Open, BulkOut or BulkIn.
struct UsbResult {
  UsbStatus status = UsbStatus::kOk;
  /// Bytes moved by BulkOut/BulkIn, also when status is not kOk (libusb reports the
  /// partial count of a timed-out transfer). 0 for Open.
  size_t transferred = 0;
  /// Why it failed, one line, e.g. "LIBUSB_ERROR_TIMEOUT (Operation timed out)" or
  /// "no such device (0 devices with this vid:pid)". Empty when status is kOk.
  std::string message;

  bool ok() const { return status == UsbStatus::kOk; }
};

/// A bulk OUT + bulk IN endpoint pair of one USB device interface. Not thread-safe.
/// Transfers have libusb_bulk_transfer semantics: an OUT transfer of n bytes goes out as
/// n / wMaxPacketSize full packets and one short packet if n is not a multiple (a 0-byte
/// transfer is one zero-length packet, ZLP); an IN transfer ends when `capacity` bytes
/// have arrived or when a short packet (or ZLP) arrives, whichever comes first.
class UsbBulkPort {
 public:
  virtual ~UsbBulkPort() = default;

  /// The device as named in every error, e.g. "usb 1d50:6170 serial X" (the serial part
  /// only when the wiring names one).
  virtual std::string name() const = 0;

  /// Finds and opens the device, claims the interface and learns the endpoints' packet
  /// sizes. A port already open is closed first. kNoDevice when no device matches.
  virtual UsbResult Open() = 0;
  /// Releases the interface and closes the device. Idempotent; never fails.
  virtual void Close() = 0;
  /// Whether Open succeeded and Close was not called since.
  virtual bool is_open() const = 0;

  /// One bulk OUT transfer of `length` bytes (0: a ZLP) from `data`, waiting at most
  /// `timeout_ms` ms (>= 1; libusb's 0 = "no timeout" is never used). Port open.
  virtual UsbResult BulkOut(const uint8_t* data, size_t length, uint32_t timeout_ms) = 0;
  /// One bulk IN transfer into `buffer` of `capacity` bytes (a multiple of
  /// in_max_packet(), so a packet never overflows it), waiting at most `timeout_ms` ms
  /// (>= 1). Returns the bytes received in `transferred`. Port open.
  virtual UsbResult BulkIn(uint8_t* buffer, size_t capacity, uint32_t timeout_ms) = 0;

  /// wMaxPacketSize of the OUT / IN endpoint, bytes (64 full speed, 512 high speed, 1024
  /// SuperSpeed). Valid after a successful Open.
  virtual size_t out_max_packet() const = 0;
  virtual size_t in_max_packet() const = 0;
};

}  // namespace dmahil::controller
