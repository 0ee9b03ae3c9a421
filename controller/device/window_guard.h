// docs/architecture.md §12 (safety): the DMA engine can write anywhere in machine memory, so the
// controller programs it only inside the bus-address windows the agent mapped for the
// current fixture (plus declared guard regions). Anything else is refused before it
// reaches the device.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "controller/device/device_client.h"

namespace dmahil::controller {

/// A request outside every window, or an invalid window. The message gives the
/// request's range and the current windows.
class WindowError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One bus-address range [bus_addr, bus_addr + length) the engine may access.
struct BusWindow {
  enum class Kind { kBuffer, kGuard };
  uint64_t bus_addr = 0;
  uint64_t length = 0;        // bytes, > 0
  Kind kind = Kind::kBuffer;  // a mapped buffer, or a declared guard/canary region
  std::string label;          // for messages, e.g. "buffer 3 page 1"
  // false: the engine may only read (read, check) here: a segment whose bus address is
  // not the page's own or not within the device's reach (fixture_runner.cc, §12).
  bool writable = true;
};

/// The set of windows of the current fixture. Starts empty: with no windows, every
/// access is refused. Not thread-safe.
class WindowGuard {
 public:
  /// Adds a window. Throws WindowError if length is 0 or the range wraps 2^64.
  void Add(const BusWindow& window);
  /// Replaces all windows (each validated as by Add; on error nothing changes).
  void Set(const std::vector<BusWindow>& windows);
  /// Removes all windows.
  void Clear();
  const std::vector<BusWindow>& windows() const { return windows_; }

  /// The window holding all of [bus_addr, bus_addr + length) — with `write`, a writable
  /// one — or nullptr if no single window does (outside, straddling two windows, or
  /// wrapping 2^64). A 0-byte range is held by the window containing bus_addr.
  const BusWindow* Find(uint64_t bus_addr, uint64_t length, bool write = false) const;

  /// Throws WindowError unless Find(bus_addr, length, write) succeeds. `what` names the
  /// op for the message, e.g. "fill"; `write`: the op writes memory (write, fill).
  void Require(const char* what, uint64_t bus_addr, uint64_t length, bool write = false) const;

  /// The windows as text, e.g. "[0x80000000, 0x80001000) buffer 'buf0'; ..." or "none".
  std::string Describe() const;

 private:
  std::vector<BusWindow> windows_;
};

/// A DeviceClient that forwards only requests entirely inside one window of its guard,
/// Write and Fill only inside a writable one: anything else (outside, straddling
/// windows, a write into a read-only window) throws WindowError and sends nothing. Info and
/// requests without an op (which touch no memory) pass.
class GuardedDeviceClient final : public DeviceClient {
 public:
  /// `device` must outlive this client.
  explicit GuardedDeviceClient(DeviceClient& device) : device_(device) {}

  /// The windows in force; set them for each fixture, clear them after.
  WindowGuard& guard() { return guard_; }
  const WindowGuard& guard() const { return guard_; }

  /// Checks `request` against the guard, then forwards it. Throws WindowError (nothing
  /// sent) if it is outside; otherwise whatever the wrapped device throws.
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override;

 private:
  DeviceClient& device_;
  WindowGuard guard_;
};

}  // namespace dmahil::controller
