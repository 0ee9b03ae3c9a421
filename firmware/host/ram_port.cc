#include "firmware/host/ram_port.h"

#include <cstring>
#include <stdexcept>

namespace dmahil::firmware {

RamPort::RamPort(uint64_t base, size_t size) : base_(base), mem_(size, 0) {
  if (size != 0 && base + (size - 1) < base) {
    throw std::invalid_argument("RamPort window wraps the bus address space");
  }
}

BusResult RamPort::Decode(uint64_t bus_addr, size_t len, size_t& offset) const {
  if (bus_addr < base_) return BusResult::Fault(bus_addr);
  const uint64_t off = bus_addr - base_;
  if (off > mem_.size()) return BusResult::Fault(bus_addr);
  if (len > mem_.size() - off) return BusResult::Fault(base_ + mem_.size());
  offset = static_cast<size_t>(off);
  return BusResult::Ok();
}

BusResult RamPort::Read(uint64_t bus_addr, uint8_t* dst, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  ++reads_;
  size_t off = 0;
  const BusResult r = Decode(bus_addr, len, off);
  if (r.ok && len > 0) std::memcpy(dst, mem_.data() + off, len);
  return r;
}

BusResult RamPort::Write(uint64_t bus_addr, const uint8_t* src, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  ++writes_;
  size_t off = 0;
  const BusResult r = Decode(bus_addr, len, off);
  if (r.ok && len > 0) std::memcpy(mem_.data() + off, src, len);
  return r;
}

std::vector<uint8_t> RamPort::Peek(uint64_t bus_addr, size_t len) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t off = 0;
  if (!Decode(bus_addr, len, off).ok) throw std::out_of_range("RamPort::Peek outside window");
  return std::vector<uint8_t>(mem_.begin() + static_cast<std::ptrdiff_t>(off),
                              mem_.begin() + static_cast<std::ptrdiff_t>(off + len));
}

void RamPort::Poke(uint64_t bus_addr, const std::vector<uint8_t>& bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t off = 0;
  if (!Decode(bus_addr, bytes.size(), off).ok) {
    throw std::out_of_range("RamPort::Poke outside window");
  }
  if (!bytes.empty()) std::memcpy(mem_.data() + off, bytes.data(), bytes.size());
}

uint64_t RamPort::reads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reads_;
}

uint64_t RamPort::writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_;
}

}  // namespace dmahil::firmware
