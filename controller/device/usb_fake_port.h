// A fake USB DMA engine behind the UsbBulkPort interface, for tests: it reassembles
// request frames from bulk OUT packets by the USB framing rule (usb_device_client.h),
// runs them on a real firmware::CommandProcessor through device_host::Execute, and
// serves each response frame as bulk IN packets of its wMaxPacketSize, with a ZLP when
// the frame is a whole number of packets. It records every breach of the framing rule by
// the host, and injects the failures of a real link (timeouts, unplugging, stalls,
// cut-off transfers, bad response frames).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "controller/device/usb_bulk_port.h"
#include "firmware/engine.h"
#include "firmware/hal.h"

namespace dmahil::controller {

/// A USB function with one bulk OUT and one bulk IN endpoint in front of a DMA engine
/// over `memory`. Transfers never block: an IN transfer with nothing to deliver returns
/// kTimeout at once. Not thread-safe.
class FakeUsbPort final : public UsbBulkPort {
 public:
  /// Counters since construction.
  struct Stats {
    uint64_t open_calls = 0;        // Open calls, failed ones included
    uint64_t opens = 0;             // successful Opens
    uint64_t out_transfers = 0;     // BulkOut calls (ZLPs included)
    uint64_t out_zlps = 0;          // zero-length OUT transfers
    uint64_t in_transfers = 0;      // BulkIn calls
    uint64_t in_zlps = 0;           // ZLPs delivered to the host
    uint64_t requests = 0;          // whole request frames executed
    uint64_t truncated_frames = 0;  // frames ended by a short packet before their length
    size_t max_out_transfer = 0;    // bytes of the largest OUT transfer
    size_t max_in_capacity = 0;     // bytes of the largest IN buffer
  };

  /// `out_max_packet` / `in_max_packet`: the endpoints' wMaxPacketSize in bytes. `memory`
  /// must outlive the port. The engine reports itself as "dmahil-usb-fake-engine".
  FakeUsbPort(firmware::MemoryPort& memory, size_t out_max_packet = 512, size_t in_max_packet = 512,
              std::string name = "usb 1d50:6170 serial FAKE");

  std::string name() const override { return name_; }
  /// kNoDevice "no such device (0 devices with this vid:pid)" while unplugged with
  /// failing opens left (see Unplug); else opens (and plugs the device back in).
  UsbResult Open() override;
  void Close() override { open_ = false; }
  bool is_open() const override { return open_; }
  UsbResult BulkOut(const uint8_t* data, size_t length, uint32_t timeout_ms) override;
  UsbResult BulkIn(uint8_t* buffer, size_t capacity, uint32_t timeout_ms) override;
  size_t out_max_packet() const override { return out_mps_; }
  size_t in_max_packet() const override { return in_mps_; }

  /// The device leaves the bus: every transfer returns kNoDevice until the port is
  /// reopened, the next `failing_opens` Opens return kNoDevice (-1: all of them, until
  /// Replug), and the device's endpoint state (partial request, queued responses) is
  /// lost, as on re-enumeration.
  void Unplug(int failing_opens);
  /// Lets the next Open succeed.
  void Replug() { failing_opens_ = 0; }

  /// Each BulkIn first pops one status from here, if any, and fails with it without
  /// delivering data (kNoDevice also unplugs, with no failing opens). kTimeout models a
  /// slow device: its response stays queued.
  std::deque<UsbStatus> in_faults;
  /// Each BulkOut first pops one status from here, if any, and fails with it, 0 bytes
  /// moved (kNoDevice also unplugs, with no failing opens).
  std::deque<UsbStatus> out_faults;
  /// When set, the next BulkOut accepts this many packets, then times out (the rest of
  /// its data is not received); reset after use.
  std::optional<size_t> cut_out_after_packets;
  /// When true, the next response is held back and queued only when the following
  /// request frame completes, before that request's response (a device slower than the
  /// host's timeout). Reset after use.
  bool hold_next_response = false;
  /// If set, edits every response frame (header + payload) before it is queued.
  std::function<void(std::string& frame)> tamper;

  const Stats& stats() const { return stats_; }
  /// Breaches of the framing rule by the host, one line each (empty when it kept it).
  const std::vector<std::string>& violations() const { return violations_; }
  /// IN packets (ZLPs included) queued and not yet delivered.
  size_t pending_in_packets() const { return in_packets_.size(); }

 private:
  // One OUT packet; a short one (or a ZLP) ends the frame.
  void ReceivePacket(const uint8_t* data, size_t length);
  void EndOfFrame();
  // Queues `frame` as IN packets (plus a ZLP if it is a whole number of packets).
  void QueueFrame(const std::string& frame);
  UsbResult Fail(UsbStatus status, size_t transferred = 0);

  std::string name_;
  size_t out_mps_;
  size_t in_mps_;
  firmware::CommandProcessor engine_;
  bool open_ = false;
  bool unplugged_ = false;
  int failing_opens_ = 0;
  std::string out_frame_;                  // packets of the request frame so far
  std::deque<std::string> in_packets_;     // response packets to deliver
  std::optional<std::string> held_frame_;  // see hold_next_response
  Stats stats_;
  std::vector<std::string> violations_;
};

}  // namespace dmahil::controller
