// What a fixture's placement (fixture.proto Placement) asks of a page, relative to the
// device: whether the device reaches it without a bounce. Shared by the virtual board's
// allocators (sim/xen.cc PopulateDomU, sim/linux_dma.cc AllocPages) and the controller's
// applicability check (controller/run/applicability.h), so both agree on every frame.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/dma_ranges.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/fixture.pb.h"

namespace dmahil {

/// Whether the device reaches CPU physical (for a foreign page: machine, the bus frame's)
/// range [phys, phys + bytes) without a bounce with a `mask_bits` DMA mask: every byte is
/// inside one dma-ranges window (identity with none) and the bus addresses are at most
/// DmaLimit(dma, mask_bits). This is dma_capable() of the address phys_to_dma() gives
/// (include/linux/dma-direct.h, Linux 6.1), which swiotlb-xen checks before bouncing
/// (drivers/xen/swiotlb-xen.c xen_swiotlb_map_page). bytes >= 1.
inline bool DeviceReaches(const v1::DmaEngineDesc& dma, uint32_t mask_bits, uint64_t phys,
                          uint64_t bytes) {
  const uint64_t first = PhysToDma(dma, phys);
  const uint64_t last = PhysToDma(dma, phys + bytes - 1);
  return first != kNoTranslation && last != kNoTranslation && last - first == bytes - 1 &&
         last <= DmaLimit(dma, mask_bits);
}

/// Whether the 4 KiB frame at CPU physical address `phys` may hold a page of a fixture
/// with `placement` and a `mask_bits` DMA mask: PLACEMENT_ANY always; PLACEMENT_REACHABLE
/// when DeviceReaches it; PLACEMENT_NEEDS_BOUNCE when it does not (swiotlb-xen must bounce
/// it). An unknown placement allows nothing.
inline bool PlacementAllows(v1::Placement placement, const v1::DmaEngineDesc& dma,
                            uint32_t mask_bits, uint64_t phys) {
  switch (placement) {
    case v1::PLACEMENT_ANY:
      return true;
    case v1::PLACEMENT_REACHABLE:
      return DeviceReaches(dma, mask_bits, phys, 4096);
    case v1::PLACEMENT_NEEDS_BOUNCE:
      return !DeviceReaches(dma, mask_bits, phys, 4096);
    default:
      return false;
  }
}

/// "reachable by the device with a 32-bit mask" and the like, for messages.
inline std::string_view PlacementWords(v1::Placement placement) {
  switch (placement) {
    case v1::PLACEMENT_REACHABLE:
      return "reachable by the device without a bounce";
    case v1::PLACEMENT_NEEDS_BOUNCE:
      return "beyond the device's reach (so swiotlb-xen must bounce it)";
    default:
      return "anywhere";
  }
}

}  // namespace dmahil
