// The DMA engine's view of the virtual board's bus (docs/architecture.md §7 "Interconnect / device
// view"): the device drives only mask_bits address bits (higher bits are lost, as on a
// 32-bit endpoint), the bus address goes through the board's dma-ranges to a machine
// address, and it reads or writes machine memory directly (non-coherent) or snooping the
// CPU caches (coherent). With an SMMU the address after dma-ranges is an IOVA that Xen's
// SMMU tables translate (Xen::IommuTranslate). An address that decodes to no RAM, or an
// SMMU fault, is a bus error.
#pragma once

#include <cstdint>
#include <functional>

#include "dmahil/v1/board.pb.h"
#include "sim/cache.h"
#include "sim/memory.h"
#include "sim/xen.h"

namespace dmahil::sim {

class DeviceView {
 public:
  /// mask_bits: returns the address width the device drives now (dma_set_mask state).
  /// xen: for the SMMU translation; nullptr = no SMMU.
  DeviceView(const v1::DmaEngineDesc& dev, MachineMemory& memory, Cache& cache,
             std::function<uint32_t()> mask_bits, const Xen* xen = nullptr);

  /// Device read / write of len bytes at bus address bus. Returns false and sets
  /// *fault_addr to the first bus address that did not decode; nothing past that point
  /// is transferred (a read leaves the rest of dst unspecified).
  bool Read(uint64_t bus, uint8_t* dst, uint64_t len, uint64_t* fault_addr);
  bool Write(uint64_t bus, const uint8_t* src, uint64_t len, uint64_t* fault_addr);

  /// Machine address that bus address bus reaches, or nullopt-like kNoTranslation.
  uint64_t Decode(uint64_t bus, uint64_t len) const;

 private:
  v1::DmaEngineDesc dev_;
  MachineMemory& memory_;
  Cache& cache_;
  std::function<uint32_t()> mask_bits_;
  const Xen* xen_;
};

}  // namespace dmahil::sim
