// A MemoryPort over plain host RAM: one decoding window [base, base + size) of bus
// addresses; anything outside it is a bus error. The memory of a stand-alone virtual
// engine, and the fake bus of the firmware tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "firmware/hal.h"

namespace dmahil::firmware {

/// RAM window of `size` bytes at bus address `base`, zero-initialized. Thread-safe: the
/// engine (on a server thread) and a test (peeking/poking) may use it concurrently.
class RamPort final : public MemoryPort {
 public:
  /// Throws std::invalid_argument if base + size wraps 2^64.
  RamPort(uint64_t base, size_t size);

  /// Copies the access if it lies entirely in the window; else returns a fault at the
  /// first address outside the window (`bus_addr` itself if it is below the window) and
  /// transfers nothing.
  BusResult Read(uint64_t bus_addr, uint8_t* dst, size_t len) override;
  BusResult Write(uint64_t bus_addr, const uint8_t* src, size_t len) override;

  /// Test access, bypassing the bus. Throw std::out_of_range outside the window.
  std::vector<uint8_t> Peek(uint64_t bus_addr, size_t len) const;
  void Poke(uint64_t bus_addr, const std::vector<uint8_t>& bytes);

  /// Number of Read / Write calls so far (for tests counting bus accesses).
  uint64_t reads() const;
  uint64_t writes() const;

  uint64_t base() const { return base_; }
  size_t size() const { return mem_.size(); }

 private:
  // Checks [bus_addr, bus_addr + len) against the window; on success sets `offset`.
  BusResult Decode(uint64_t bus_addr, size_t len, size_t& offset) const;

  const uint64_t base_;
  mutable std::mutex mu_;
  std::vector<uint8_t> mem_;
  uint64_t reads_ = 0;
  uint64_t writes_ = 0;
};

}  // namespace dmahil::firmware
