// Runs one PV block fixture (fixture.proto FIXTURE_KIND_PV_BLOCK, docs/architecture.md §14):
// the domU writes self-describing lines to its PV disk with O_DIRECT, xen-blkfront grants
// the pages, dom0's xen-blkback submits them to the real driver of dom0's disk; the
// controller reads what the device took from memory on the device's side of the disk
// (BoardLink.disk), writes the next generation there, and the domU reads it back and
// verifies every line, so a write-path and a read-path bug are told apart.
#pragma once

#include <cstdint>
#include <string>

#include "controller/run/fixture_runner.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/fixture.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// Runs the PV block `fixture` on the board behind `link`; the contract of RunFixture
/// (fixture_runner.h): seed and buffer_id give the pattern (canaries buffer_id + 1); never
/// throws for agent or disk errors (VERDICT_ERROR with the message); the domU's buffer is
/// released before returning whenever its agent answers. Not applicable, with the
/// reason (PvBlockNotApplicableReason, applicability.h), where the domU has no PV disk,
/// the controller cannot see the disk's device side, or the I/O does not fit the disk.
///
/// Per iteration i (generations 3i-2, 3i-1, 3i, as the engine fixtures): DMA_TO_DEVICE
/// and DMA_BIDIRECTIONAL write generation 3i-1 (left in the domU's dirty cache lines
/// over memory holding 3i-2) and check the device side; DMA_FROM_DEVICE and
/// DMA_BIDIRECTIONAL put generation 3i on the device side, load the buffer's lines into
/// the domU's cache (PRIME_READ), read, and verify. The buffer's bytes outside the I/O
/// are canaries. The evidence has no DMA segments (no agent saw the driver's mappings):
/// the oracle judges the data (Evidence.segments_known false).
v1::FixtureResult RunPvBlockFixture(BoardLink& link, const v1::Board& board,
                                    const std::string& board_name, const v1::Fixture& fixture,
                                    uint64_t seed, uint32_t buffer_id);

}  // namespace dmahil::controller
