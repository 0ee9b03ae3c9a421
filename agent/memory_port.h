// The virtual DMA engine's bus: adapts the virtual board's DeviceView to the firmware's
// MemoryPort HAL, holding the board lock for each access. With a fence (the dom0 sim
// backend) it refuses, as a bus fault at the first address, what dmahil.ko refuses on a
// real board with EACCES: an access outside every live mapping's segments, or a write
// into a segment marked write_refused (SimBackend::EngineMayAccess).
#pragma once

#include "agent/sim_backend.h"
#include "firmware/hal.h"
#include "sim/virtual_board.h"

namespace dmahil::agent {

class SimMemoryPort final : public firmware::MemoryPort {
 public:
  /// board and fence (may be null: no fence) must outlive the port.
  explicit SimMemoryPort(sim::VirtualBoard& board, SimBackend* fence = nullptr)
      : board_(board), fence_(fence) {}

  firmware::BusResult Read(uint64_t bus_addr, uint8_t* dst, size_t len) override {
    if (fence_ != nullptr && !fence_->EngineMayAccess(bus_addr, len, false))
      return firmware::BusResult::Fault(bus_addr);
    std::lock_guard lock(board_.mutex());
    uint64_t fault = 0;
    if (!board_.device().Read(bus_addr, dst, len, &fault)) return firmware::BusResult::Fault(fault);
    return firmware::BusResult::Ok();
  }
  firmware::BusResult Write(uint64_t bus_addr, const uint8_t* src, size_t len) override {
    if (fence_ != nullptr && !fence_->EngineMayAccess(bus_addr, len, true))
      return firmware::BusResult::Fault(bus_addr);
    std::lock_guard lock(board_.mutex());
    uint64_t fault = 0;
    if (!board_.device().Write(bus_addr, src, len, &fault))
      return firmware::BusResult::Fault(fault);
    return firmware::BusResult::Ok();
  }

 private:
  sim::VirtualBoard& board_;
  SimBackend* fence_;
};

}  // namespace dmahil::agent
