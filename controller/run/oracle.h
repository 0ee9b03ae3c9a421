// The oracle (docs/architecture.md §6): from what one DMA transaction left behind — the bus
// addresses the DMA API returned, the lines the checker found wrong, the canaries — decide the
// verdict and name the bug class, with the exact displacement for a wrong bus address.
//
// Two sources of evidence, in this order of precedence:
//  1. The mapping audit: for every page not bounced, the bus address must be
//     phys_to_dma(bfn << 12 | offset) through the board's dma-ranges (swiotlb-xen's
//     xen_phys_to_dma, Linux >= 5.9; extrapolated with the first range's offset when the
//     page is outside every range); a bounced page must be device-reachable
//     (dma_capable: <= min(mask, end of dma-ranges)); a page that is not reachable must
//     have bounced. A wrong address is a failure even if the data happened to match.
//     A segment the agent refused to let the device write (DmaSegment.write_refused:
//     its own computation of the page's bus address disagrees) fails the same way
//     even when the board description's audit finds nothing: it is never a pass, and
//     its unwritten lines are not diagnosed from the data.
//     The audit also checks that the segments cover the buffer: an incomplete answer
//     from the agent is an ERROR, never a pass.
//  2. The data: per-line classes from the pattern checker (common/pattern.h):
//     misplaced -> wrong bus address (displacement from the line's header), bus error ->
//     never landed, torn -> torn line, stale -> stale line (or, on a bounced page read
//     by the CPU, a bounce never copied back -> never landed), zero/corrupt -> never
//     landed; a changed canary -> stray DMA.
// For a PV block fixture whose disk driver was watched, the driver audit (driver_audit.h)
// comes right after the mapping audit: its wrong bus addresses, then its maintenance.
// Between the two, for a board whose engine is not coherent (board.dma.coherent false):
// the maintenance audit (maintenance_audit.h) of what dmahil.ko recorded, when the backend
// records it. A missing or misaddressed clean/invalidate is a failure even though the
// data matched: QEMU models no caches, so the data alone cannot show it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/run/driver_audit.h"
#include "controller/run/maintenance_audit.h"
#include "dmahil/v1/agent.pb.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// What one iteration of a fixture left behind.
struct Evidence {
  v1::DmaDirection direction = v1::DMA_TO_DEVICE;
  uint32_t line_size = 64;      // bytes
  uint32_t buffer_id = 0;       // the pattern's buffer id of the DMA'd buffer
  uint32_t dma_mask_bits = 64;  // the mask the fixture mapped with
  bool needs_bounce = false;    // the fixture is about swiotlb: every page must bounce
  uint64_t buffer_offset = 0;   // bytes: where the DMA'd range starts in the buffer
  uint64_t buffer_bytes = 0;    // bytes of whole lines the DMA touches
  uint64_t dma_offset = 0;      // the DMA'd range; differs from the whole-line range with partial
  uint64_t dma_bytes = 0;       // lines (dma_bytes 0: the same)
  std::vector<v1::DmaSegment> segments;  // as the agent returned them, in buffer order
  // False where no agent saw the mapping (a PV block fixture: the disk's driver mapped
  // the pages): no mapping or maintenance audit, no segment coverage; the data decides.
  bool segments_known = true;
  std::vector<v1::LineFinding> findings;  // every wrong line (line = index in the buffer)
  size_t device_read_findings = 0;        // the first ones come from the device reading the buffer
  uint64_t lines_checked = 0;
  uint64_t canary_mismatches = 0;  // lines changed in the canary pages
  // What dmahil.ko recorded around the device's access (linux-xen; empty or not audited
  // elsewhere), for the maintenance audit (maintenance_audit.h).
  std::vector<MaintenanceRecord> maintenance;
  // A PV block fixture whose disk driver dom0's agent watched (driver_audit.h): its
  // mappings are audited like the engine's and its foreign pages reported as `segments`.
  std::optional<DriverEvidence> driver;
};

/// Audit of one segment against the board description.
struct SegmentAudit {
  uint64_t expected_dma_addr = 0;
  int64_t displacement = 0;          // dma_addr - expected, bytes (0 if right)
  bool wrong_address = false;        // not bounced and dma_addr != expected
  bool unreachable = false;          // the device cannot reach dma_addr (mask / dma-ranges)
  bool should_have_bounced = false;  // not bounced, but the page's own bus address is
                                     // beyond the device's reach
};

/// Audits one segment (see the file comment). board.dma gives dma-ranges.
SegmentAudit AuditSegment(const v1::Board& board, uint32_t dma_mask_bits,
                          const v1::DmaSegment& segment);

/// Whether the engine may write `segment` (docs/architecture.md §12): the controller's
/// side of the one rule the agents apply when they map (dmahil.ko seg_write_safe(),
/// sim::LinuxDma::DeviceMayWrite; both follow drivers/xen/swiotlb-xen.c
/// xen_phys_to_dma and include/linux/dma-direct.h phys_to_dma / dma_capable). True iff
/// the agent did not refuse it (DmaSegment.write_refused) and the mapping audit finds
/// its bus address right and within the device's reach (AuditSegment: neither
/// wrong_address nor unreachable). The fixture runner writes nothing else and opens
/// such a segment's window read-only; Diagnose then fails the fixture from the audit.
bool DeviceMayWrite(const v1::Board& board, uint32_t dma_mask_bits, const v1::DmaSegment& segment);

/// The oracle's answer for one iteration: verdict, diagnosis, detail, displacement,
/// mismatching_lines, lines_checked, segments (with expected_dma_addr) and line_map (one
/// string per 4 KiB page, a glyph per line, report::LineGlyph) of `result`.
/// Board and fixture names are left to the caller.
void Diagnose(const v1::Board& board, const Evidence& evidence, v1::FixtureResult* result);

}  // namespace dmahil::controller
