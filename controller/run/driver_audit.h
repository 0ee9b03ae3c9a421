// The DMA-API audit of a real driver (docs/architecture.md §14): what the kernel did when
// the disk's own driver (nvme, an SD/eMMC host, ahci) mapped the pages of a PV block
// request, as dom0's agent recorded it (agent.proto WatchDevice / DeviceOps, dmahil.ko
// agent/kmod/dev_audit.c). The records are grouped into mappings and judged by the same
// rules as the engine's: every page not bounced must get phys_to_dma of its machine
// address (swiotlb-xen's xen_phys_to_dma; the module computes that address itself), and
// on a non-coherent device each mapping needs the maintenance its direction requires
// (maintenance_audit.h), judged from what the kprobes saw the kernel issue.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "controller/run/maintenance_audit.h"
#include "dmahil/v1/agent.pb.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// One mapping the driver made: the MAP entries of one ops call (a map_page, or every
/// entry of a map_sg), with the maintenance of that call and of the syncs and the unmap
/// that later named one of its bus addresses.
struct DriverMapping {
  v1::DmaDirection direction = v1::DMA_DIRECTION_UNSPECIFIED;
  bool read_path = false;                // recorded during the domU's read (else its write)
  std::vector<v1::DmaSegment> segments;  // offsets count bytes within the mapping
  std::vector<uint64_t> expected;        // per segment: DeviceOp.expected_dma_addr
  std::vector<MaintenanceRecord> maintenance;
  bool unmapped = false;  // its unmap was recorded
};

/// Groups the ops of one drain (`ops`, oldest first) into mappings, appending to `out`;
/// `read_path` marks them. An unmap or sync joins the latest mapping, of this drain or an
/// earlier one in `out`, that has a segment at its dma_addr and is not unmapped yet; one
/// that names no known mapping (mapped before the watch began) is left out.
void GroupDriverOps(const v1::DeviceOps& ops, bool read_path, std::vector<DriverMapping>* out);

/// What the driver audit found wrong first, for the oracle.
struct DriverFinding {
  v1::Verdict verdict = v1::VERDICT_FAIL;  // ERROR: records were lost
  v1::Diagnosis diagnosis = v1::DIAGNOSIS_NONE;
  int64_t displacement = 0;  // bytes: dma_addr - expected, or op address - expected
  v1::IoPath path = v1::IO_PATH_UNSPECIFIED;  // the side of the I/O it is on
  std::string detail;  // starts with the path: "write path: " or "read path: "
};

/// The driver's mappings during one PV block iteration, as the oracle sees them.
struct DriverEvidence {
  std::string device;                // e.g. "nvme at 0000:00:03.0", for messages
  bool coherent = true;              // board.proto TestDisk.coherent: no maintenance is needed
  bool maintenance_audited = false;  // DeviceOps.maintenance_audited of every drain
  uint64_t dropped = 0;              // records the module lost (DeviceOps.dropped)
  bool dma_direct = false;           // WatchDeviceResponse.dma_direct: no ops, no records
  std::vector<DriverMapping> mappings;
};

/// The first wrong thing in `ev`, or nullopt. In this order: records lost (ERROR); a
/// device without DMA-mapping ops under Xen (WRONG_BUS_ADDRESS: dma-direct bypasses
/// swiotlb-xen, so foreign pages get their pfn's address; displacement unknown, 0); a page
/// not bounced whose dma_addr is not expected_dma_addr (WRONG_BUS_ADDRESS, displacement);
/// on a non-coherent device with the maintenance audited, a mapping holding a foreign
/// page not bounced whose maintenance does not meet its direction (AuditMaintenance on its
/// foreign pages; MISSING_ or MISADDRESSED_MAINTENANCE).
std::optional<DriverFinding> AuditDriver(const v1::Board& board, const DriverEvidence& ev);

/// What the domU's wrong read data means when AuditDriver found every mapping right:
/// nullopt unless `wrong_lines` > 0 and every foreign page the driver mapped on the read
/// path was bounced; then NEVER_LANDED on the read path. The device wrote the swiotlb slots
/// at their right bus addresses, so its data did not reach the pages: the copy back at
/// unmap is missing (kernel/dma/swiotlb.c swiotlb_tbl_unmap_single). The lines' own classes
/// (an older generation, another line's data) say only which earlier request's data
/// xen-blkfront copied out of its persistent grant, not a cache or an address.
std::optional<DriverFinding> ReadNotCopiedBack(const DriverEvidence& ev, uint64_t wrong_lines);

/// The foreign pages the driver mapped, in order, for the report (SegmentReport.page:
/// their index in that order).
std::vector<v1::SegmentReport> DriverForeignPages(const DriverEvidence& ev);

/// One sentence on what was seen, for a passing result: "nvme at 0000:00:03.0 made 2
/// mappings, 32 entries on foreign pages (0 bounced) and 0 on dom0's own, every one not
/// bounced at its expected bus address; maintenance as each direction needs in the 2 unmapped
/// mappings of foreign pages" (or "not needed (coherent)", or "not audited ...").
std::string DescribeDriver(const DriverEvidence& ev);

}  // namespace dmahil::controller
