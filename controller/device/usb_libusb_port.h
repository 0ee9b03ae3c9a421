// UsbBulkPort over libusb-1.0 (synchronous API): the hardware DMA engine's USB link
// (docs/architecture.md §10). The device is matched by VID:PID and, if the farm file gives one, by
// its iSerialNumber string; the wiring comes from dmahil.v1.UsbEngine (lab.proto).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "controller/device/usb_bulk_port.h"
#include "dmahil/v1/lab.pb.h"

struct libusb_context;
struct libusb_device_handle;
struct libusb_config_descriptor;

namespace dmahil::controller {

/// "usb VVVV:PPPP" plus " serial S" when engine.serial is set (4 lowercase hex digits
/// each), e.g. "usb 1d50:6170 serial X": the device's name in every USB error.
std::string UsbDeviceName(const v1::UsbEngine& engine);

/// Checks the wiring before any libusb call: vid and pid fit 16 bits, interface fits 8
/// bits, ep_out is an OUT endpoint address (bit 7 clear, 0x01..0x0f) and ep_in an IN one
/// (bit 7 set, 0x81..0x8f). Throws DeviceError naming the device and the bad field.
void ValidateUsbEngine(const v1::UsbEngine& engine);

/// The UsbStatus of a libusb return code (enum libusb_error; >= 0 is kOk).
UsbStatus UsbStatusFromLibusb(int rc);

/// libusb_error_name and libusb_strerror of `rc`, e.g.
/// "LIBUSB_ERROR_ACCESS (Access denied (insufficient permissions))".
std::string LibusbErrorText(int rc);

/// A device with the wanted VID:PID, as Open saw it while choosing.
struct UsbCandidate {
  std::string location;  // "bus 1 address 4", for messages
  std::string serial;    // its iSerialNumber string ("" if it has none)
  int open_error = 0;    // libusb code of a failed libusb_open or serial read; 0 if fine
};

/// Which device Open uses.
struct UsbSelection {
  int index = -1;   // into the candidates; -1 with `error` set when none fits
  UsbResult error;  // kNoDevice: no (such) device; kOther: ambiguous, or cannot open
};

/// Chooses among the devices with the wanted VID:PID. `serial` empty: the only one
/// (several → kOther "2 devices with this vid:pid (serials A, B): set serial in the farm
/// file"). `serial` set: the one whose iSerialNumber equals it. None at all → kNoDevice
/// "no such device (0 devices with this vid:pid)"; none with that serial → kNoDevice
/// "no such device (2 devices with this vid:pid, serials A, B)", or kOther naming the
/// libusb error if some could not be opened (e.g. LIBUSB_ERROR_ACCESS: permissions).
UsbSelection SelectUsbCandidate(const std::vector<UsbCandidate>& candidates,
                                const std::string& serial);

/// wMaxPacketSize (bits 10..0, bytes) of the OUT and IN bulk endpoints.
struct UsbEndpointSizes {
  uint16_t out_max_packet = 0;
  uint16_t in_max_packet = 0;
};

/// Finds engine.ep_out and engine.ep_in in alternate setting 0 of interface
/// engine.interface of `config` (libusb_get_active_config_descriptor's result) and
/// returns their packet sizes. kOther with a message listing what the interface has when
/// the interface or an endpoint is missing, is not a bulk endpoint, or has packet size 0.
UsbResult FindBulkEndpoints(const libusb_config_descriptor& config, const v1::UsbEngine& engine,
                            UsbEndpointSizes& sizes);

/// The real port: libusb_init context of its own, libusb_get_device_list +
/// libusb_get_device_descriptor to match VID:PID, libusb_open +
/// libusb_get_string_descriptor_ascii(iSerialNumber) to match the serial,
/// libusb_set_auto_detach_kernel_driver (a kernel driver bound to the interface is
/// detached while claimed and reattached on release), libusb_claim_interface,
/// FindBulkEndpoints on the active configuration, libusb_bulk_transfer, and
/// libusb_release_interface + libusb_close. A transfer ending in LIBUSB_ERROR_PIPE
/// clears the halt (libusb_clear_halt) before returning kPipe.
class LibusbBulkPort final : public UsbBulkPort {
 public:
  /// Validates `engine` (ValidateUsbEngine) and initialises libusb; does not open. Throws
  /// DeviceError naming the device if the wiring is invalid or libusb_init fails.
  explicit LibusbBulkPort(const v1::UsbEngine& engine);
  /// Closes the device and exits the libusb context.
  ~LibusbBulkPort() override;

  LibusbBulkPort(const LibusbBulkPort&) = delete;
  LibusbBulkPort& operator=(const LibusbBulkPort&) = delete;

  std::string name() const override;
  UsbResult Open() override;
  void Close() override;
  bool is_open() const override { return handle_ != nullptr; }
  UsbResult BulkOut(const uint8_t* data, size_t length, uint32_t timeout_ms) override;
  UsbResult BulkIn(uint8_t* buffer, size_t capacity, uint32_t timeout_ms) override;
  size_t out_max_packet() const override { return sizes_.out_max_packet; }
  size_t in_max_packet() const override { return sizes_.in_max_packet; }

 private:
  // One libusb_bulk_transfer on `endpoint`.
  UsbResult Transfer(uint8_t endpoint, uint8_t* data, size_t length, uint32_t timeout_ms);

  v1::UsbEngine engine_;
  libusb_context* ctx_ = nullptr;
  libusb_device_handle* handle_ = nullptr;
  UsbEndpointSizes sizes_;
};

}  // namespace dmahil::controller
