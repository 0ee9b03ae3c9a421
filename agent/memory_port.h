// The virtual DMA engine's bus: adapts the virtual board's DeviceView to the firmware's
// MemoryPort HAL, holding the board lock for each access.
#pragma once

#include "firmware/hal.h"
#include "sim/virtual_board.h"

namespace dmahil::agent {

class SimMemoryPort final : public firmware::MemoryPort {
 public:
  explicit SimMemoryPort(sim::VirtualBoard& board) : board_(board) {}

  firmware::BusResult Read(uint64_t bus_addr, uint8_t* dst, size_t len) override {
    std::lock_guard lock(board_.mutex());
    uint64_t fault = 0;
    if (!board_.device().Read(bus_addr, dst, len, &fault)) return firmware::BusResult::Fault(fault);
    return firmware::BusResult::Ok();
  }
  firmware::BusResult Write(uint64_t bus_addr, const uint8_t* src, size_t len) override {
    std::lock_guard lock(board_.mutex());
    uint64_t fault = 0;
    if (!board_.device().Write(bus_addr, src, len, &fault))
      return firmware::BusResult::Fault(fault);
    return firmware::BusResult::Ok();
  }

 private:
  sim::VirtualBoard& board_;
};

}  // namespace dmahil::agent
