#include "controller/device/usb_libusb_port.h"

#include <fmt/format.h>
#include <libusb.h>

#include <climits>

#include "controller/device/device_client.h"

namespace dmahil::controller {

namespace {

// The serials of `candidates` that could be read, for messages: "A, B" or "none".
std::string SerialList(const std::vector<UsbCandidate>& candidates) {
  std::string out;
  for (const UsbCandidate& c : candidates) {
    if (c.open_error != 0) continue;
    if (!out.empty()) out += ", ";
    out += c.serial.empty() ? std::string("(none)") : c.serial;
  }
  return out.empty() ? "none readable" : out;
}

std::string PluralDevices(size_t n) {
  return fmt::format("{} device{} with this vid:pid", n, n == 1 ? "" : "s");
}

UsbResult Failure(UsbStatus status, std::string message) {
  UsbResult r;
  r.status = status;
  r.message = std::move(message);
  return r;
}

UsbResult LibusbFailure(int rc, const std::string& what) {
  return Failure(UsbStatusFromLibusb(rc), fmt::format("{}: {}", what, LibusbErrorText(rc)));
}

const char* TransferTypeName(uint8_t attributes) {
  switch (attributes & LIBUSB_TRANSFER_TYPE_MASK) {
    case LIBUSB_TRANSFER_TYPE_CONTROL:
      return "control";
    case LIBUSB_TRANSFER_TYPE_ISOCHRONOUS:
      return "isochronous";
    case LIBUSB_TRANSFER_TYPE_BULK:
      return "bulk";
    default:
      return "interrupt";
  }
}

}  // namespace

std::string UsbDeviceName(const v1::UsbEngine& engine) {
  std::string name = fmt::format("usb {:04x}:{:04x}", engine.vid(), engine.pid());
  if (!engine.serial().empty()) name += " serial " + engine.serial();
  return name;
}

void ValidateUsbEngine(const v1::UsbEngine& engine) {
  auto fail = [&](const std::string& what) {
    throw DeviceError(fmt::format("{}: bad USB wiring: {}", UsbDeviceName(engine), what));
  };
  if (engine.vid() > 0xffff) fail(fmt::format("vid 0x{:x} does not fit 16 bits", engine.vid()));
  if (engine.pid() > 0xffff) fail(fmt::format("pid 0x{:x} does not fit 16 bits", engine.pid()));
  if (engine.interface() > 0xff) {
    fail(fmt::format("interface {} does not fit 8 bits", engine.interface()));
  }
  if (engine.ep_out() < 0x01 || engine.ep_out() > 0x0f) {
    fail(fmt::format("ep_out 0x{:02x} is not a bulk OUT endpoint address (0x01..0x0f, e.g. 0x02)",
                     engine.ep_out()));
  }
  if (engine.ep_in() < 0x81 || engine.ep_in() > 0x8f) {
    fail(fmt::format("ep_in 0x{:02x} is not a bulk IN endpoint address (0x81..0x8f, e.g. 0x82)",
                     engine.ep_in()));
  }
}

UsbStatus UsbStatusFromLibusb(int rc) {
  if (rc >= 0) return UsbStatus::kOk;
  switch (rc) {
    case LIBUSB_ERROR_TIMEOUT:
      return UsbStatus::kTimeout;
    case LIBUSB_ERROR_NO_DEVICE:
      return UsbStatus::kNoDevice;
    case LIBUSB_ERROR_PIPE:
      return UsbStatus::kPipe;
    case LIBUSB_ERROR_OVERFLOW:
      return UsbStatus::kOverflow;
    default:
      return UsbStatus::kOther;
  }
}

std::string LibusbErrorText(int rc) {
  return fmt::format("{} ({})", libusb_error_name(rc), libusb_strerror(rc));
}

UsbSelection SelectUsbCandidate(const std::vector<UsbCandidate>& candidates,
                                const std::string& serial) {
  UsbSelection sel;
  const size_t n = candidates.size();
  if (n == 0) {
    sel.error = Failure(UsbStatus::kNoDevice, "no such device (0 devices with this vid:pid)");
    return sel;
  }
  // The first open error, for messages.
  const UsbCandidate* unopened = nullptr;
  size_t unopened_count = 0;
  for (const UsbCandidate& c : candidates) {
    if (c.open_error == 0) continue;
    if (unopened == nullptr) unopened = &c;
    ++unopened_count;
  }
  if (serial.empty()) {
    if (n > 1) {
      sel.error = Failure(UsbStatus::kOther,
                          fmt::format("{} (serials {}): set serial in the farm file to choose one",
                                      PluralDevices(n), SerialList(candidates)));
    } else if (candidates[0].open_error != 0) {
      sel.error =
          Failure(UsbStatus::kOther,
                  fmt::format("cannot open the device at {}: {}{}", candidates[0].location,
                              LibusbErrorText(candidates[0].open_error),
                              candidates[0].open_error == LIBUSB_ERROR_ACCESS
                                  ? " (check the permissions of /dev/bus/usb, e.g. a udev rule)"
                                  : ""));
    } else {
      sel.index = 0;
    }
    return sel;
  }
  int found = -1;
  size_t matches = 0;
  for (size_t i = 0; i < n; ++i) {
    if (candidates[i].open_error == 0 && candidates[i].serial == serial) {
      if (found < 0) found = static_cast<int>(i);
      ++matches;
    }
  }
  if (matches == 1) {
    sel.index = found;
  } else if (matches > 1) {
    sel.error = Failure(
        UsbStatus::kOther,
        fmt::format("{} devices with this vid:pid have serial {}: cannot choose", matches, serial));
  } else if (unopened != nullptr) {
    sel.error = Failure(
        UsbStatus::kOther,
        fmt::format("no device with this serial among the {} that could be read (serials {}); "
                    "{} could not be opened, e.g. at {}: {}{}",
                    PluralDevices(n), SerialList(candidates), unopened_count, unopened->location,
                    LibusbErrorText(unopened->open_error),
                    unopened->open_error == LIBUSB_ERROR_ACCESS
                        ? " (check the permissions of /dev/bus/usb, e.g. a udev rule)"
                        : ""));
  } else {
    sel.error = Failure(
        UsbStatus::kNoDevice,
        fmt::format("no such device ({}, serials {})", PluralDevices(n), SerialList(candidates)));
  }
  return sel;
}

UsbResult FindBulkEndpoints(const libusb_config_descriptor& config, const v1::UsbEngine& engine,
                            UsbEndpointSizes& sizes) {
  const libusb_interface_descriptor* alt = nullptr;
  std::string interfaces;
  for (int i = 0; i < config.bNumInterfaces; ++i) {
    const libusb_interface& itf = config.interface[i];
    for (int a = 0; a < itf.num_altsetting; ++a) {
      const libusb_interface_descriptor& d = itf.altsetting[a];
      if (d.bAlternateSetting != 0) continue;
      interfaces += fmt::format("{}{}", interfaces.empty() ? "" : ", ", d.bInterfaceNumber);
      if (d.bInterfaceNumber == engine.interface()) alt = &d;
    }
  }
  if (alt == nullptr) {
    return Failure(UsbStatus::kOther,
                   fmt::format("the active configuration has no interface {} (interfaces: {})",
                               engine.interface(), interfaces.empty() ? "none" : interfaces));
  }
  std::string endpoints;
  for (int e = 0; e < alt->bNumEndpoints; ++e) {
    const libusb_endpoint_descriptor& ep = alt->endpoint[e];
    endpoints += fmt::format("{}0x{:02x} {}", endpoints.empty() ? "" : ", ", ep.bEndpointAddress,
                             TransferTypeName(ep.bmAttributes));
  }
  if (endpoints.empty()) endpoints = "none";
  auto find = [&](uint32_t address, const char* field, uint16_t& size) -> UsbResult {
    for (int e = 0; e < alt->bNumEndpoints; ++e) {
      const libusb_endpoint_descriptor& ep = alt->endpoint[e];
      if (ep.bEndpointAddress != address) continue;
      if ((ep.bmAttributes & LIBUSB_TRANSFER_TYPE_MASK) != LIBUSB_TRANSFER_TYPE_BULK) {
        return Failure(UsbStatus::kOther,
                       fmt::format("{} 0x{:02x} of interface {} is an {} endpoint, not bulk", field,
                                   address, engine.interface(), TransferTypeName(ep.bmAttributes)));
      }
      size = static_cast<uint16_t>(ep.wMaxPacketSize & 0x7ff);
      if (size == 0) {
        return Failure(UsbStatus::kOther,
                       fmt::format("{} 0x{:02x} has wMaxPacketSize 0", field, address));
      }
      return {};
    }
    return Failure(UsbStatus::kOther,
                   fmt::format("interface {} has no endpoint {} 0x{:02x} (endpoints: {})",
                               engine.interface(), field, address, endpoints));
  };
  UsbEndpointSizes found;
  if (UsbResult r = find(engine.ep_out(), "ep_out", found.out_max_packet); !r.ok()) return r;
  if (UsbResult r = find(engine.ep_in(), "ep_in", found.in_max_packet); !r.ok()) return r;
  sizes = found;
  return {};
}

LibusbBulkPort::LibusbBulkPort(const v1::UsbEngine& engine) : engine_(engine) {
  ValidateUsbEngine(engine_);
  const int rc = libusb_init(&ctx_);
  if (rc != LIBUSB_SUCCESS) {
    ctx_ = nullptr;
    throw DeviceError(fmt::format("{}: cannot initialise libusb: {}", name(), LibusbErrorText(rc)));
  }
}

LibusbBulkPort::~LibusbBulkPort() {
  Close();
  if (ctx_ != nullptr) libusb_exit(ctx_);
}

std::string LibusbBulkPort::name() const { return UsbDeviceName(engine_); }

UsbResult LibusbBulkPort::Open() {
  Close();
  libusb_device** list = nullptr;
  const ssize_t count = libusb_get_device_list(ctx_, &list);
  if (count < 0) return LibusbFailure(static_cast<int>(count), "listing USB devices");

  std::vector<UsbCandidate> candidates;
  std::vector<libusb_device_handle*> handles;
  for (ssize_t i = 0; i < count; ++i) {
    libusb_device_descriptor desc{};
    if (libusb_get_device_descriptor(list[i], &desc) != LIBUSB_SUCCESS) continue;
    if (desc.idVendor != engine_.vid() || desc.idProduct != engine_.pid()) continue;
    UsbCandidate c;
    c.location = fmt::format("bus {} address {}", libusb_get_bus_number(list[i]),
                             libusb_get_device_address(list[i]));
    libusb_device_handle* h = nullptr;
    c.open_error = libusb_open(list[i], &h);
    if (c.open_error == LIBUSB_SUCCESS && desc.iSerialNumber != 0) {
      unsigned char buf[256];
      const int len = libusb_get_string_descriptor_ascii(h, desc.iSerialNumber, buf, sizeof buf);
      if (len < 0) {
        c.open_error = len;
      } else {
        c.serial.assign(reinterpret_cast<const char*>(buf), static_cast<size_t>(len));
      }
    }
    if (c.open_error != LIBUSB_SUCCESS && h != nullptr) {
      libusb_close(h);
      h = nullptr;
    }
    candidates.push_back(std::move(c));
    handles.push_back(h);
  }
  const UsbSelection sel = SelectUsbCandidate(candidates, engine_.serial());
  for (size_t i = 0; i < handles.size(); ++i) {
    if (static_cast<int>(i) != sel.index && handles[i] != nullptr) libusb_close(handles[i]);
  }
  libusb_free_device_list(list, 1);  // the chosen handle keeps its own device reference
  if (sel.index < 0) return sel.error;
  handle_ = handles[static_cast<size_t>(sel.index)];

  // Linux detaches a bound kernel driver on claim and reattaches it on release; elsewhere
  // this is LIBUSB_ERROR_NOT_SUPPORTED and there is nothing to detach.
  libusb_set_auto_detach_kernel_driver(handle_, 1);
  const int iface = static_cast<int>(engine_.interface());
  int rc = libusb_claim_interface(handle_, iface);
  if (rc != LIBUSB_SUCCESS) {
    libusb_close(handle_);
    handle_ = nullptr;
    return LibusbFailure(rc, fmt::format("claiming interface {}", iface));
  }
  libusb_config_descriptor* config = nullptr;
  rc = libusb_get_active_config_descriptor(libusb_get_device(handle_), &config);
  UsbResult r;
  if (rc != LIBUSB_SUCCESS) {
    r = LibusbFailure(rc, "reading the active configuration descriptor");
  } else {
    r = FindBulkEndpoints(*config, engine_, sizes_);
    libusb_free_config_descriptor(config);
  }
  if (!r.ok()) Close();
  return r;
}

void LibusbBulkPort::Close() {
  if (handle_ == nullptr) return;
  libusb_release_interface(handle_, static_cast<int>(engine_.interface()));
  libusb_close(handle_);
  handle_ = nullptr;
}

UsbResult LibusbBulkPort::Transfer(uint8_t endpoint, uint8_t* data, size_t length,
                                   uint32_t timeout_ms) {
  if (handle_ == nullptr) return Failure(UsbStatus::kOther, "the device is not open");
  if (length > static_cast<size_t>(INT_MAX)) {
    return Failure(UsbStatus::kOther, fmt::format("a {}-byte transfer is too long", length));
  }
  uint8_t none = 0;  // a ZLP still gets a valid buffer pointer
  int transferred = 0;
  const int rc = libusb_bulk_transfer(handle_, endpoint, data != nullptr ? data : &none,
                                      static_cast<int>(length), &transferred,
                                      timeout_ms == 0 ? 1u : timeout_ms);
  UsbResult r;
  r.transferred = transferred > 0 ? static_cast<size_t>(transferred) : 0;
  if (rc == LIBUSB_SUCCESS) return r;
  r.status = UsbStatusFromLibusb(rc);
  r.message = LibusbErrorText(rc);
  if (rc == LIBUSB_ERROR_PIPE) {
    const int clear = libusb_clear_halt(handle_, endpoint);
    r.message += clear == LIBUSB_SUCCESS
                     ? fmt::format(" on endpoint 0x{:02x}; halt cleared", endpoint)
                     : fmt::format(" on endpoint 0x{:02x}; clearing the halt failed: {}", endpoint,
                                   LibusbErrorText(clear));
  }
  return r;
}

UsbResult LibusbBulkPort::BulkOut(const uint8_t* data, size_t length, uint32_t timeout_ms) {
  // libusb_bulk_transfer takes a non-const buffer for both directions; OUT only reads it.
  return Transfer(static_cast<uint8_t>(engine_.ep_out()), const_cast<uint8_t*>(data), length,
                  timeout_ms);
}

UsbResult LibusbBulkPort::BulkIn(uint8_t* buffer, size_t capacity, uint32_t timeout_ms) {
  return Transfer(static_cast<uint8_t>(engine_.ep_in()), buffer, capacity, timeout_ms);
}

}  // namespace dmahil::controller
