// Whether a fixture can run on a board at all, decided from the two descriptions before
// anything is allocated. A fixture that cannot is VERDICT_NOT_APPLICABLE with the reason:
// never an ERROR (nothing broke), never a FAIL (nothing was tested), never a miss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dmahil/v1/agent.pb.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/fixture.pb.h"

namespace dmahil::controller {

/// Why `fixture` cannot run on `board` ("" if it can). line_size: the board's cache line in
/// bytes as its dom0 agent reports it (0: take board.cache.line_size). The reasons, checked
/// in this order:
///  - partial_bytes not below the line size (the fixture shares a line's head and tail
///    with the CPU; a line no longer than partial_bytes has no device part);
///  - BUFFER_MIXED_SG or double_map on a board whose kind does not run the model: the
///    linux-xen backend cannot compose a dom0 buffer of foreign and local pages nor grant
///    a frame twice (dmahil.ko ABI 2 maps one pin at a time; gntalloc grants a page once);
///  - the placement (common/placement.h, judged with the fixture's DMA mask, else the
///    board's) that no frame can meet: too few domU frames for foreign pages, too few dom0
///    frames outside the balloon and the swiotlb pool for local pages, counted in 4 KiB
///    Xen pages from the board's Xen layout (without one, from its RAM banks: Xen places
///    the memory there, and only a placement no RAM at all can meet is refused);
///  - PLACEMENT_NEEDS_BOUNCE or expect_bounce where no bounce is possible: the swiotlb pool
///    (xen.swiotlb_pool) is itself beyond the device's reach with the fixture's mask, so
///    Linux fails the mapping (swiotlb-xen xen_swiotlb_map_page: the bounce address must
///    pass dma_capable too).
std::string NotApplicableReason(const v1::Board& board, const v1::Fixture& fixture,
                                uint32_t line_size = 0);

/// Why the PV block `fixture` (fixture.proto FIXTURE_KIND_PV_BLOCK) cannot run ("" if it
/// can), from what the domU's agent says of its disk (AgentInfo.block_*), whether the
/// controller sees the disk's device side (ChooseDiskSide; `unseen`: its reason when not,
/// or empty for a generic one) and the board's cache line (bytes). The reasons, in this
/// order: the domU's agent has no block device (a board without a PV disk; virtual
/// boards); the device side is not visible; the I/O's
/// offsets or length are not whole sectors of this disk (block_sector_size); the I/O
/// does not start and end on cache lines; the disk is too small for it.
std::string PvBlockNotApplicableReason(const v1::Fixture& fixture, const v1::AgentInfo& guest,
                                       bool disk_visible, uint32_t line_size,
                                       std::string_view unseen = {});

}  // namespace dmahil::controller
