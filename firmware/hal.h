// The firmware's hardware abstraction: the DMA engine's view of the bus.
//
// Freestanding: no exceptions, no heap, no RTTI needed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dmahil::firmware {

/// Outcome of one bus access.
struct BusResult {
  bool ok = true;
  /// First bus address of the access that did not decode; meaningful only when !ok.
  uint64_t fault_addr = 0;

  static constexpr BusResult Ok() { return BusResult{}; }
  static constexpr BusResult Fault(uint64_t addr) { return BusResult{false, addr}; }
};

/// The bus as the DMA engine sees it. Addresses are bus addresses (what the device puts
/// on the bus); the board's interconnect behind this port applies dma-ranges and the
/// address mask. A bus error means some address of the access did not decode; the port
/// reports the first such address, and what it did with the rest of the access is
/// unspecified (the engine treats the whole access as failed).
///
/// Implementations: the virtual SoC's interconnect (sim/), a RAM window for tests
/// (firmware/host/ram_port.h), the FPGA's PCIe master on hardware.
class MemoryPort {
 public:
  /// Reads `len` bytes at `bus_addr` into `dst` (which holds at least `len` bytes).
  virtual BusResult Read(uint64_t bus_addr, uint8_t* dst, size_t len) = 0;
  /// Writes `len` bytes from `src` to `bus_addr`.
  virtual BusResult Write(uint64_t bus_addr, const uint8_t* src, size_t len) = 0;

 protected:
  // Not deletable through the base: the firmware never owns a port.
  ~MemoryPort() = default;
};

}  // namespace dmahil::firmware
