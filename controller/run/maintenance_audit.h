// The maintenance audit: the second oracle, for a board whose DMA engine is not
// coherent but whose CPU caches we cannot observe (QEMU models none). dmahil.ko records
// every cache-maintenance operation the kernel issues while it maps, syncs and unmaps
// (GNTTABOP_cache_flush for foreign pages, arch_sync_dma_for_{device,cpu} for dom0's own
// pages and the swiotlb pool), and this audit checks them against what the direction
// requires for every segment of the mapping:
//
//   before the device reads (DMA_TO_DEVICE, DMA_BIDIRECTIONAL): a clean covering it;
//   before the device writes (DMA_FROM_DEVICE): a clean or an invalidate covering it, so
//     no dirty line is later evicted over the device's data;
//   after the device wrote, before the CPU reads (DMA_FROM_DEVICE, DMA_BIDIRECTIONAL): an
//     invalidate covering it (at dma_sync_*_for_cpu or unmap).
//
// "Covering" is by address: a GNTTABOP_cache_flush op must cover the segment's machine
// range dma_to_phys(dma_addr) (arch/arm/xen/mm.c dma_cache_maint(), Linux 6.1); an
// arch_sync op, which works on dom0's physical addresses, may name either that range or
// the page's pfn (a dom0-local grant is cleaned through its ballooned pfn on map:
// drivers/xen/swiotlb-xen.c xen_swiotlb_map_page()). This is what the kernel must do, not
// a copy of what 6.1 does: arm64 cleaning for DMA_FROM_DEVICE too is accepted, not needed.
//
// A page without its operation is MISADDRESSED (with the displacement to the nearest op
// of the right kind) when the kernel issued at least one such op per page of the mapping,
// so one went elsewhere; with fewer ops, or an op covering only part of the page, it is
// MISSING. Known limit: an arch_sync op at a foreign frame's machine address counts as
// covering it, although dom0's linear map reaches that frame only for a dom0-local grant
// (the segment does not say whether its bfn is dom0 RAM).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dmahil/v1/agent.pb.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/fixture.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// When an operation was issued relative to the device's access.
enum class MaintenancePhase {
  kBeforeDevice,  // dma_map_* or dma_sync_*_for_device
  kAfterDevice,   // dma_sync_*_for_cpu or dma_unmap_*
};

struct MaintenanceRecord {
  MaintenancePhase phase;
  v1::Maintenance maintenance;
};

/// A failed audit.
struct MaintenanceFinding {
  v1::Verdict verdict = v1::VERDICT_FAIL;  // VERDICT_ERROR when records were dropped
  v1::Diagnosis diagnosis = v1::DIAGNOSIS_MISSING_MAINTENANCE;
  int64_t displacement = 0;  // bytes, op address - expected, for MISADDRESSED
  std::string detail;        // one line: direction, page, what was missing or where it went
};

/// Audits the records of one DMA transaction (`segments` as the agent returned them;
/// `records` in order). Returns nullopt if every requirement is met, or if no record is
/// audited (Maintenance.audited false: the backend cannot see maintenance, e.g. the sim
/// backend); the caller runs it only for a board whose engine is not coherent
/// (board.dma.coherent false).
std::optional<MaintenanceFinding> AuditMaintenance(const v1::Board& board, v1::DmaDirection dir,
                                                   const std::vector<v1::DmaSegment>& segments,
                                                   const std::vector<MaintenanceRecord>& records);

}  // namespace dmahil::controller
