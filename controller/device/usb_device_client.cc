#include "controller/device/usb_device_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <thread>

#include "common/framing.h"
#include "controller/device/usb_libusb_port.h"

namespace dmahil::controller {

namespace {

// The first IN transfer of a response, before its length is known: most responses
// (everything but large Reads and Checks with many findings) fit in it.
constexpr size_t kFirstReadBytes = 64u * 1024u;

size_t RoundUp(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// The largest transfer that is a multiple of `max_packet` and at most 1 MiB.
size_t MaxTransfer(size_t max_packet) {
  return std::max(max_packet, kUsbMaxTransferBytes / max_packet * max_packet);
}

UsbResult Timeout() {
  UsbResult r;
  r.status = UsbStatus::kTimeout;
  r.message = "the deadline passed";
  return r;
}

}  // namespace

UsbDeviceClient::UsbDeviceClient(std::unique_ptr<UsbBulkPort> port, const UsbClientOptions& options)
    : port_(std::move(port)),
      options_(options),
      timeout_(options.timeout_ms == 0 ? 5000 : options.timeout_ms) {
  options_.reopen_attempts = std::max(options_.reopen_attempts, 1u);
  const UsbResult r = OpenOnce();
  if (!r.ok()) Fail(r.message);
}

UsbDeviceClient::~UsbDeviceClient() { port_->Close(); }

std::string UsbDeviceClient::name() const { return port_->name(); }

void UsbDeviceClient::Fail(const std::string& what) const {
  throw DeviceError(fmt::format("{}: {}", port_->name(), what));
}

uint32_t UsbDeviceClient::MsLeft(Clock::time_point deadline) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return static_cast<uint32_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

UsbResult UsbDeviceClient::OpenOnce() {
  UsbResult r = port_->Open();
  if (r.ok() && (port_->out_max_packet() == 0 || port_->in_max_packet() == 0)) {
    r.status = UsbStatus::kOther;
    r.message = fmt::format("the port reports a packet size of 0 (OUT {}, IN {})",
                            port_->out_max_packet(), port_->in_max_packet());
  }
  if (!r.ok()) port_->Close();
  return r;
}

void UsbDeviceClient::EnsureReady() {
  if (!port_->is_open()) {
    const Clock::time_point start = Clock::now();
    uint32_t backoff = options_.reopen_backoff_ms;
    for (uint32_t attempt = 1;; ++attempt) {
      const UsbResult r = OpenOnce();
      if (r.ok()) break;
      if (attempt >= options_.reopen_attempts) {
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        Fail(fmt::format("reopening the device: {} (gave up after {} attempt{} in {} ms)",
                         r.message, attempt, attempt == 1 ? "" : "s", elapsed.count()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff));
      backoff = std::min(backoff * 2, std::max(options_.reopen_backoff_max_ms, backoff));
    }
    ++reopens_;
  }
  if (out_partial_) {
    // The failed request stopped inside its frame: a ZLP ends that frame on the device
    // (which then answers it, or not; the drain below takes either).
    const UsbResult r = port_->BulkOut(nullptr, 0, static_cast<uint32_t>(timeout_.count()));
    if (!r.ok()) {
      port_->Close();
      if (r.status == UsbStatus::kNoDevice) out_partial_ = in_stale_ = false;
      Fail(
          fmt::format("ending the cut-off request frame with a zero-length packet: {}", r.message));
    }
    out_partial_ = false;
  }
  if (in_stale_) {
    Drain();
    in_stale_ = false;
  }
}

void UsbDeviceClient::Drain() {
  const size_t mps = port_->in_max_packet();
  std::string buf(RoundUp(kFirstReadBytes, mps), '\0');
  const Clock::time_point deadline = Clock::now() + timeout_;
  for (;;) {
    const uint32_t left = MsLeft(deadline);
    if (left == 0) {
      port_->Close();
      Fail(fmt::format("draining stale data: the device kept sending for {} ms", timeout_.count()));
    }
    const UsbResult r = port_->BulkIn(reinterpret_cast<uint8_t*>(buf.data()), buf.size(),
                                      std::min(left, std::max(options_.drain_poll_ms, 1u)));
    if (r.status == UsbStatus::kTimeout && r.transferred == 0) return;  // nothing pending
    if (r.ok() || r.status == UsbStatus::kTimeout) continue;            // discarded
    port_->Close();
    if (r.status == UsbStatus::kNoDevice) out_partial_ = in_stale_ = false;
    Fail(fmt::format("draining stale data: {}", r.message));
  }
}

void UsbDeviceClient::FailTransfer(const std::string& step, const UsbResult& r, uint64_t tag) {
  port_->Close();
  if (r.status == UsbStatus::kNoDevice) {
    // The device re-enumerates with empty endpoints: nothing to resynchronise.
    out_partial_ = in_stale_ = false;
    stale_tag_.reset();
    Fail(
        fmt::format("{}: {}: the device went away; request tag {} is not retried (it may have "
                    "reached the device); the next request reopens it",
                    step, r.message, tag));
  }
  if (r.status == UsbStatus::kTimeout) {
    Fail(fmt::format("{} timed out after {} ms ({})", step, timeout_.count(), r.message));
  }
  Fail(fmt::format("{}: {}", step, r.message));
}

UsbResult UsbDeviceClient::SendFrame(const std::string& frame, Clock::time_point deadline,
                                     size_t& sent, std::string& step) {
  const size_t mps = port_->out_max_packet();
  const size_t chunk = MaxTransfer(mps);
  const auto* data = reinterpret_cast<const uint8_t*>(frame.data());
  sent = 0;
  while (sent < frame.size()) {
    const size_t n = std::min(chunk, frame.size() - sent);
    step = fmt::format("sending the request ({} of {} bytes sent)", sent, frame.size());
    const uint32_t left = MsLeft(deadline);
    UsbResult r = left == 0 ? Timeout() : port_->BulkOut(data + sent, n, left);
    sent += std::min(r.transferred, n);
    if (!r.ok()) {
      step = fmt::format("sending the request ({} of {} bytes sent)", sent, frame.size());
      return r;
    }
    if (r.transferred != n) {
      r.status = UsbStatus::kOther;
      r.message = fmt::format("a {}-byte bulk OUT transfer moved {} bytes", n, r.transferred);
      return r;
    }
  }
  if (frame.size() % mps == 0) {
    step = fmt::format("sending the zero-length packet after the {}-byte request", frame.size());
    const uint32_t left = MsLeft(deadline);
    return left == 0 ? Timeout() : port_->BulkOut(nullptr, 0, left);
  }
  return {};
}

void UsbDeviceClient::ReceiveFrame(std::string& frame, Clock::time_point deadline, uint64_t tag) {
  const size_t mps = port_->in_max_packet();
  const size_t max_transfer = MaxTransfer(mps);
  // Every failure from here on may leave the device with data to send.
  auto fail = [&](const std::string& what) {
    port_->Close();
    in_stale_ = true;
    stale_tag_ = tag;
    Fail(what);
  };
  frame.clear();
  size_t have = 0;
  size_t total = 0;  // header + payload bytes; 0 until the header is in
  for (;;) {
    const size_t want = total == 0 ? kFirstReadBytes : total - have;
    const size_t cap = std::min(max_transfer, RoundUp(want, mps));
    frame.resize(have + cap);
    const uint32_t left = MsLeft(deadline);
    const UsbResult r =
        left == 0 ? Timeout()
                  : port_->BulkIn(reinterpret_cast<uint8_t*>(frame.data() + have), cap, left);
    const size_t got = std::min(r.transferred, cap);
    have += got;
    frame.resize(have);
    if (!r.ok()) {
      in_stale_ = true;
      stale_tag_ = tag;
      const std::string step =
          have == 0 ? std::string("waiting for the response")
                    : fmt::format("reading the response ({} of {} bytes received)", have,
                                  total == 0 ? std::string("?") : std::to_string(total));
      FailTransfer(step, r, tag);
    }
    if (total == 0 && have >= framing::kHeaderBytes) {
      try {
        total = framing::kHeaderBytes + framing::DecodeFrameHeader(frame.data());
      } catch (const framing::FramingError& e) {
        fail(fmt::format("bad response: {}", e.what()));
      }
    }
    if (total != 0 && have > total) {
      fail(fmt::format("bad response: the device sent {} bytes for a {}-byte frame", have, total));
    }
    if (got < cap) {  // a short packet or ZLP: the device ended its frame here
      if (total == 0 || have < total) {
        fail(fmt::format("bad response: truncated frame: the device ended it after {} of {} bytes",
                         have,
                         total == 0 ? fmt::format("at least {}", framing::kHeaderBytes)
                                    : std::to_string(total)));
      }
      return;
    }
    if (total != 0 && have == total) {
      // The last transfer ended full at the frame's end, so the frame is a whole number of
      // packets and its ZLP is still to be read.
      std::string zlp(mps, '\0');
      const uint32_t zleft = MsLeft(deadline);
      const UsbResult z =
          zleft == 0 ? Timeout()
                     : port_->BulkIn(reinterpret_cast<uint8_t*>(zlp.data()), zlp.size(), zleft);
      if (!z.ok()) {
        in_stale_ = true;
        stale_tag_ = tag;
        FailTransfer(
            fmt::format("reading the zero-length packet after the {}-byte response", total), z,
            tag);
      }
      if (z.transferred != 0) {
        fail(fmt::format(
            "bad response: the device sent {} more bytes after the {}-byte frame instead of a "
            "zero-length packet",
            z.transferred, total));
      }
      return;
    }
  }
}

v1::DeviceResponse UsbDeviceClient::Transact(const v1::DeviceRequest& request) {
  auto [req, frame] = FrameRequest(request, next_tag_, port_->name());

  Clock::time_point deadline;
  for (int attempt = 0;; ++attempt) {
    EnsureReady();
    deadline = Clock::now() + timeout_;
    size_t sent = 0;
    std::string step;
    const UsbResult r = SendFrame(frame, deadline, sent, step);
    if (r.ok()) break;
    if (r.status == UsbStatus::kNoDevice && sent == 0 && attempt == 0) {
      // Gone while idle: the request never reached it. Reopen and send it once more.
      port_->Close();
      out_partial_ = in_stale_ = false;
      continue;
    }
    if (sent > 0) {
      out_partial_ = true;  // cleared again by FailTransfer for kNoDevice
      in_stale_ = true;
      stale_tag_ = req.tag();
    }
    FailTransfer(step, r, req.tag());
  }

  std::string response_frame;
  for (;;) {
    ReceiveFrame(response_frame, deadline, req.tag());
    v1::DeviceResponse resp;
    try {
      framing::ParseFramePayload(std::string_view(response_frame).substr(framing::kHeaderBytes),
                                 resp);
    } catch (const framing::FramingError& e) {
      port_->Close();
      in_stale_ = true;
      stale_tag_ = req.tag();
      Fail(fmt::format("bad response: {}", e.what()));
    }
    if (resp.tag() == req.tag()) return resp;
    if (stale_tag_ && resp.tag() == *stale_tag_) {
      // The late answer to a request that failed earlier: skip it, ours comes next.
      stale_tag_.reset();
      continue;
    }
    port_->Close();
    in_stale_ = true;
    stale_tag_ = req.tag();
    if (resp.tag() == 0 && resp.status() == v1::DEVICE_BAD_REQUEST) {
      // The device's answer to a frame it could not read (docs/device-protocol.md §6): ours,
      // or one cut off earlier whose answer came after the drain. Either way its message
      // says what was wrong; the reopen, drain and stale tag recover as for a wrong tag.
      Fail(fmt::format(
          "the device answered a frame it could not read (tag 0, DEVICE_BAD_REQUEST) instead "
          "of request tag {}: {}",
          req.tag(), resp.message().empty() ? "(no message)" : resp.message()));
    }
    Fail(fmt::format("response tag {} does not match request tag {}", resp.tag(), req.tag()));
  }
}

std::unique_ptr<UsbDeviceClient> MakeUsbDeviceClient(const v1::UsbEngine& engine) {
  UsbClientOptions options;
  options.timeout_ms = engine.timeout_ms() == 0 ? 5000 : engine.timeout_ms();
  return std::make_unique<UsbDeviceClient>(std::make_unique<LibusbBulkPort>(engine), options);
}

void ValidateUsbEngine(const v1::UsbEngine& e, const std::string& path, Problems& problems,
                       Claims& claims) {
  if (e.vid() == 0 || e.vid() > 0xffff)
    problems.Add(path + ".vid", "{}.vid {:#06x} must be a nonzero 16-bit USB vendor id", path,
                 e.vid());
  if (e.pid() == 0 || e.pid() > 0xffff)
    problems.Add(path + ".pid", "{}.pid {:#06x} must be a nonzero 16-bit USB product id", path,
                 e.pid());
  // bEndpointAddress: bit 7 direction (1 = IN), bits 3..0 the number (0 is control).
  const auto endpoint = [&](const char* name, uint32_t ep, bool in) {
    const std::string f = fmt::format("{}.{}", path, name);
    if (ep > 0xff || (ep & 0x70) != 0 || (ep & 0x0f) == 0)
      problems.Add(f, "{} {:#04x} is not a bulk endpoint address (number 1..15 in bits 3..0)", f,
                   ep);
    else if (in && (ep & 0x80) == 0)
      problems.Add(f,
                   "{} {:#04x} is an OUT address; an IN endpoint has bit 0x80 set (e.g. {:#04x})",
                   f, ep, ep | 0x80);
    else if (!in && (ep & 0x80) != 0)
      problems.Add(f,
                   "{} {:#04x} is an IN address; an OUT endpoint has bit 0x80 clear (e.g. {:#04x})",
                   f, ep, ep & 0x0f);
  };
  endpoint("ep_out", e.ep_out(), false);
  endpoint("ep_in", e.ep_in(), true);
  if (e.interface() > 0xff)
    problems.Add(path + ".interface", "{}.interface {} must be 0..255", path, e.interface());
  if (e.vid() != 0 && e.pid() != 0)
    claims.Claim(problems, "USB engine",
                 fmt::format("{:04x}:{:04x}{}", e.vid(), e.pid(),
                             e.serial().empty() ? " (any serial)" : " serial " + e.serial()),
                 path + (e.serial().empty() ? ".pid" : ".serial"));
}

}  // namespace dmahil::controller
