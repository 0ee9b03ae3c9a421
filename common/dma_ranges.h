// Address translation between CPU physical and bus addresses through a device's
// `dma-ranges` (Linux include/linux/dma-direct.h translate_phys_to_dma /
// translate_dma_to_phys, and of_dma_configure's bus_dma_limit). Shared by the virtual
// board's Linux model and the controller's mapping audit.
#pragma once

#include <cstdint>

#include "dmahil/v1/board.pb.h"

namespace dmahil {

inline constexpr uint64_t kNoTranslation = ~uint64_t{0};  // (dma_addr_t)-1

/// phys_to_dma(): bus address of CPU physical address phys; identity with no dma-ranges;
/// kNoTranslation if phys is outside every range.
inline uint64_t PhysToDma(const v1::DmaEngineDesc& dev, uint64_t phys) {
  if (dev.dma_ranges().empty()) return phys;
  for (const v1::DmaRange& r : dev.dma_ranges())
    if (phys >= r.cpu_base() && phys - r.cpu_base() < r.size())
      return phys - r.cpu_base() + r.bus_base();
  return kNoTranslation;
}

/// dma_to_phys(): CPU physical address of bus address dma; kNoTranslation outside.
inline uint64_t DmaToPhys(const v1::DmaEngineDesc& dev, uint64_t dma) {
  if (dev.dma_ranges().empty()) return dma;
  for (const v1::DmaRange& r : dev.dma_ranges())
    if (dma >= r.bus_base() && dma - r.bus_base() < r.size())
      return dma - r.bus_base() + r.cpu_base();
  return kNoTranslation;
}

/// The DMA mask for mask_bits (32..64 bits).
inline uint64_t DmaMask(uint32_t mask_bits) {
  return mask_bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << mask_bits) - 1;
}

/// Highest reachable bus address: min(mask, bus_dma_limit) where bus_dma_limit is the
/// end of the dma-ranges (dma_capable()'s limit).
inline uint64_t DmaLimit(const v1::DmaEngineDesc& dev, uint32_t mask_bits) {
  uint64_t limit = DmaMask(mask_bits);
  uint64_t bus_limit = 0;
  for (const v1::DmaRange& r : dev.dma_ranges())
    bus_limit = r.bus_base() + r.size() - 1 > bus_limit ? r.bus_base() + r.size() - 1 : bus_limit;
  if (bus_limit != 0 && bus_limit < limit) limit = bus_limit;
  return limit;
}

}  // namespace dmahil
