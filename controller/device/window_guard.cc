#include "controller/device/window_guard.h"

#include <fmt/format.h>

namespace dmahil::controller {
namespace {

bool Wraps(uint64_t bus_addr, uint64_t length) {
  return length != 0 && bus_addr + (length - 1) < bus_addr;
}

// "[start, end)" for a range that may end exactly at 2^64.
std::string Range(uint64_t bus_addr, uint64_t length) {
  if (Wraps(bus_addr, length)) return fmt::format("[{:#x}, +{:#x} wraps 2^64)", bus_addr, length);
  if (length != 0 && bus_addr + length == 0) return fmt::format("[{:#x}, 2^64)", bus_addr);
  return fmt::format("[{:#x}, {:#x})", bus_addr, bus_addr + length);
}

}  // namespace

void WindowGuard::Add(const BusWindow& window) {
  if (window.length == 0) {
    throw WindowError(
        fmt::format("window '{}' at {:#x} has length 0", window.label, window.bus_addr));
  }
  if (Wraps(window.bus_addr, window.length)) {
    throw WindowError(fmt::format("window '{}' {} wraps the bus address space", window.label,
                                  Range(window.bus_addr, window.length)));
  }
  windows_.push_back(window);
}

void WindowGuard::Set(const std::vector<BusWindow>& windows) {
  WindowGuard next;
  for (const BusWindow& w : windows) next.Add(w);
  windows_ = std::move(next.windows_);
}

void WindowGuard::Clear() { windows_.clear(); }

const BusWindow* WindowGuard::Find(uint64_t bus_addr, uint64_t length, bool write) const {
  if (Wraps(bus_addr, length)) return nullptr;
  for (const BusWindow& w : windows_) {
    if (bus_addr < w.bus_addr || (write && !w.writable)) continue;
    const uint64_t off = bus_addr - w.bus_addr;
    if (off < w.length && length <= w.length - off) return &w;
  }
  return nullptr;
}

void WindowGuard::Require(const char* what, uint64_t bus_addr, uint64_t length, bool write) const {
  if (Find(bus_addr, length, write) != nullptr) return;
  if (write && Find(bus_addr, length) != nullptr)
    throw WindowError(fmt::format(
        "refusing device {} of {} bytes at {}: its window is read-only (the bus address is "
        "not the page's own or beyond the device's reach; windows: {})",
        what, length, Range(bus_addr, length), Describe()));
  throw WindowError(fmt::format(
      "refusing device {} of {} bytes at {}: not inside one mapped window (windows: {})", what,
      length, Range(bus_addr, length), Describe()));
}

std::string WindowGuard::Describe() const {
  if (windows_.empty()) return "none";
  std::string out;
  for (const BusWindow& w : windows_) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} {} '{}'{}", Range(w.bus_addr, w.length),
                       w.kind == BusWindow::Kind::kGuard ? "guard" : "buffer", w.label,
                       w.writable ? "" : " read-only");
  }
  return out;
}

v1::DeviceResponse GuardedDeviceClient::Transact(const v1::DeviceRequest& request) {
  switch (request.op_case()) {
    case v1::DeviceRequest::kRead:
      guard_.Require("read", request.read().bus_addr(), request.read().length());
      break;
    case v1::DeviceRequest::kWrite:
      guard_.Require("write", request.write().bus_addr(), request.write().data().size(), true);
      break;
    case v1::DeviceRequest::kFill:
      guard_.Require("fill", request.fill().bus_addr(), request.fill().length(), true);
      break;
    case v1::DeviceRequest::kCheck:
      guard_.Require("check", request.check().bus_addr(), request.check().length());
      break;
    case v1::DeviceRequest::kInfo:
    case v1::DeviceRequest::OP_NOT_SET:
      break;
  }
  return device_.Transact(request);
}

}  // namespace dmahil::controller
