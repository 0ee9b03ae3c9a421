#include "controller/device/usb_fake_port.h"

#include <fmt/format.h>
#include <libusb.h>

#include <algorithm>

#include "common/framing.h"
#include "controller/device/usb_device_client.h"
#include "controller/device/usb_libusb_port.h"
#include "dmahil/v1/device.pb.h"
#include "firmware/host/codec.h"

namespace dmahil::controller {

namespace {

int LibusbCode(UsbStatus status) {
  switch (status) {
    case UsbStatus::kOk:
      return LIBUSB_SUCCESS;
    case UsbStatus::kTimeout:
      return LIBUSB_ERROR_TIMEOUT;
    case UsbStatus::kNoDevice:
      return LIBUSB_ERROR_NO_DEVICE;
    case UsbStatus::kPipe:
      return LIBUSB_ERROR_PIPE;
    case UsbStatus::kOverflow:
      return LIBUSB_ERROR_OVERFLOW;
    case UsbStatus::kOther:
      break;
  }
  return LIBUSB_ERROR_IO;
}

}  // namespace

FakeUsbPort::FakeUsbPort(firmware::MemoryPort& memory, size_t out_max_packet, size_t in_max_packet,
                         std::string name)
    : name_(std::move(name)),
      out_mps_(out_max_packet),
      in_mps_(in_max_packet),
      engine_(memory, firmware::EngineInfo{"dmahil-usb-fake-engine", firmware::kMaxDataBytes, 64}) {
}

UsbResult FakeUsbPort::Fail(UsbStatus status, size_t transferred) {
  UsbResult r;
  r.status = status;
  r.transferred = transferred;
  r.message = LibusbErrorText(LibusbCode(status));
  return r;
}

UsbResult FakeUsbPort::Open() {
  ++stats_.open_calls;
  open_ = false;
  if (failing_opens_ != 0) {
    if (failing_opens_ > 0) --failing_opens_;
    UsbResult r;
    r.status = UsbStatus::kNoDevice;
    r.message = "no such device (0 devices with this vid:pid)";
    return r;
  }
  unplugged_ = false;
  open_ = true;
  ++stats_.opens;
  return {};
}

void FakeUsbPort::Unplug(int failing_opens) {
  unplugged_ = true;
  failing_opens_ = failing_opens;
  out_frame_.clear();
  in_packets_.clear();
  held_frame_.reset();
}

UsbResult FakeUsbPort::BulkOut(const uint8_t* data, size_t length, uint32_t timeout_ms) {
  ++stats_.out_transfers;
  stats_.max_out_transfer = std::max(stats_.max_out_transfer, length);
  if (!open_) {
    violations_.push_back("BulkOut on a closed port");
    return Fail(UsbStatus::kOther);
  }
  if (unplugged_) return Fail(UsbStatus::kNoDevice);
  if (timeout_ms == 0) violations_.push_back("BulkOut with timeout 0 (no timeout in libusb)");
  if (length > kUsbMaxTransferBytes) {
    violations_.push_back(fmt::format("a {}-byte OUT transfer (more than 1 MiB)", length));
  }
  if (!out_faults.empty()) {
    const UsbStatus s = out_faults.front();
    out_faults.pop_front();
    if (s == UsbStatus::kNoDevice) Unplug(0);
    return Fail(s);
  }
  if (length == 0) {
    ++stats_.out_zlps;
    ReceivePacket(nullptr, 0);
    return {};
  }
  size_t packets = 0;
  for (size_t off = 0; off < length; off += out_mps_) {
    if (cut_out_after_packets && packets == *cut_out_after_packets) {
      cut_out_after_packets.reset();
      return Fail(UsbStatus::kTimeout, off);
    }
    ReceivePacket(data + off, std::min(out_mps_, length - off));
    ++packets;
  }
  UsbResult r;
  r.transferred = length;
  return r;
}

void FakeUsbPort::ReceivePacket(const uint8_t* data, size_t length) {
  out_frame_.append(reinterpret_cast<const char*>(data), length);
  if (length < out_mps_) EndOfFrame();
  // A full packet: the frame goes on, unless it is already longer than its header says
  // (a missing ZLP); EndOfFrame reports that when the frame finally ends.
}

void FakeUsbPort::EndOfFrame() {
  std::string frame;
  frame.swap(out_frame_);
  if (held_frame_) {
    QueueFrame(*held_frame_);
    held_frame_.reset();
  }
  if (frame.empty()) {
    violations_.push_back("a ZLP that ends no request frame");
    return;
  }
  v1::DeviceResponse resp;
  uint32_t len = 0;
  bool whole = frame.size() >= framing::kHeaderBytes;
  if (whole) {
    try {
      len = framing::DecodeFrameHeader(frame.data());
    } catch (const framing::FramingError& e) {
      violations_.push_back(fmt::format("request frame: {}", e.what()));
      return;
    }
    whole = frame.size() >= framing::kHeaderBytes + len;
  }
  if (!whole) {
    // Ended early: the host gave up on this request mid-frame. Answer like the TCP
    // server answers a bad frame: DEVICE_BAD_REQUEST, tag 0.
    ++stats_.truncated_frames;
    resp.set_status(v1::DEVICE_BAD_REQUEST);
    resp.set_message(fmt::format("truncated request frame ({} bytes)", frame.size()));
  } else if (frame.size() > framing::kHeaderBytes + len) {
    violations_.push_back(fmt::format(
        "a {}-byte request frame continued for {} bytes (a missing zero-length packet?)",
        framing::kHeaderBytes + len, frame.size()));
    return;
  } else {
    v1::DeviceRequest req;
    try {
      framing::ParseFramePayload(std::string_view(frame).substr(framing::kHeaderBytes), req);
    } catch (const framing::FramingError& e) {
      violations_.push_back(fmt::format("request frame: {}", e.what()));
      return;
    }
    ++stats_.requests;
    resp = device_host::Execute(engine_, req);
  }
  std::string out = framing::EncodeFrame(resp);
  if (tamper) tamper(out);
  if (hold_next_response) {
    hold_next_response = false;
    held_frame_ = std::move(out);
    return;
  }
  QueueFrame(out);
}

void FakeUsbPort::QueueFrame(const std::string& frame) {
  for (size_t off = 0; off < frame.size(); off += in_mps_) {
    in_packets_.push_back(frame.substr(off, in_mps_));
  }
  if (frame.size() % in_mps_ == 0) in_packets_.emplace_back();  // the ZLP
}

UsbResult FakeUsbPort::BulkIn(uint8_t* buffer, size_t capacity, uint32_t timeout_ms) {
  ++stats_.in_transfers;
  stats_.max_in_capacity = std::max(stats_.max_in_capacity, capacity);
  if (!open_) {
    violations_.push_back("BulkIn on a closed port");
    return Fail(UsbStatus::kOther);
  }
  if (unplugged_) return Fail(UsbStatus::kNoDevice);
  if (timeout_ms == 0) violations_.push_back("BulkIn with timeout 0 (no timeout in libusb)");
  if (capacity == 0 || capacity % in_mps_ != 0) {
    violations_.push_back(
        fmt::format("an IN buffer of {} bytes (not a multiple of {})", capacity, in_mps_));
  }
  if (capacity > kUsbMaxTransferBytes) {
    violations_.push_back(fmt::format("a {}-byte IN transfer (more than 1 MiB)", capacity));
  }
  if (!in_faults.empty()) {
    const UsbStatus s = in_faults.front();
    in_faults.pop_front();
    if (s == UsbStatus::kNoDevice) Unplug(0);
    return Fail(s);
  }
  if (in_packets_.empty()) return Fail(UsbStatus::kTimeout);
  size_t n = 0;
  while (n < capacity && !in_packets_.empty()) {
    const std::string& p = in_packets_.front();
    if (p.size() > capacity - n) return Fail(UsbStatus::kOverflow, n);
    std::copy(p.begin(), p.end(), buffer + n);
    n += p.size();
    const bool short_packet = p.size() < in_mps_;
    if (p.empty()) ++stats_.in_zlps;
    in_packets_.pop_front();
    if (short_packet) break;  // a short packet or ZLP ends the transfer
  }
  UsbResult r;
  r.transferred = n;
  return r;
}

}  // namespace dmahil::controller
