#include "controller/run/applicability.h"

#include "controller/run/board_kind.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "common/placement.h"
#include "common/validate.h"
#include "common/xen_page.h"

namespace dmahil::controller {
namespace {

bool Inside(const v1::MemoryBank& b, uint64_t addr) {
  return b.size() != 0 && addr >= b.base() && addr - b.base() < b.size();
}

// 4 KiB frames of `banks` (minus those in `skip`) that `placement` allows with `mask_bits`,
// counted up to `need` (the answer is min(count, need)).
uint64_t Frames(const google::protobuf::RepeatedPtrField<v1::MemoryBank>& banks,
                const std::vector<const v1::MemoryBank*>& skip, v1::Placement placement,
                const v1::DmaEngineDesc& dma, uint32_t mask_bits, uint64_t need) {
  uint64_t n = 0;
  for (const v1::MemoryBank& b : banks)
    for (uint64_t a = b.base(); a < b.base() + b.size() && n < need; a += kXenPageSize) {
      if (std::any_of(skip.begin(), skip.end(),
                      [&](const v1::MemoryBank* s) { return Inside(*s, a); }))
        continue;
      n += PlacementAllows(placement, dma, mask_bits, a) ? 1 : 0;
    }
  return n;
}

std::string Range(const v1::MemoryBank& b) {
  return fmt::format("[{:#x}, {:#x})", b.base(), b.base() + b.size());
}

}  // namespace

std::string NotApplicableReason(const v1::Board& board, const v1::Fixture& fx, uint32_t line_size) {
  const uint32_t line = line_size != 0 ? line_size : board.cache().line_size();
  if (fx.partial_bytes() != 0 && fx.partial_bytes() >= line)
    return fmt::format(
        "partial_bytes {} is not below the board's {}-byte cache line: no line is shared "
        "between the CPU and the device",
        fx.partial_bytes(), line);
  // The model's agents compose buffers and grant a frame twice; the linux-xen ones do not.
  const bool model_agents = TraitsOf(board).runs_model;
  if (!model_agents && fx.source() == v1::BUFFER_MIXED_SG)
    return "a scatterlist of foreign and local pages needs ComposeBuffer, which the "
           "linux-xen backend does not have (dmahil.ko ABI 2 maps one pin at a time)";
  if (!model_agents && fx.double_map())
    return "the same frame granted twice needs grants_per_page 2, which the linux-xen "
           "backend does not have (gntalloc grants each page it allocates once)";

  const uint32_t mask = fx.dma_mask_bits() != 0 ? fx.dma_mask_bits() : board.dma().mask_bits();
  const bool layout = board.has_xen() && board.xen().dom0_ram_size() > 0;
  const uint32_t canaries = 2 * fx.canary_pages();
  // Pages the fixture asks of each domain with its placement (fixture_runner.cc Allocate).
  uint64_t foreign = 0;
  uint64_t local = 0;
  switch (fx.source()) {
    case v1::BUFFER_FOREIGN_GRANT:
      foreign = fx.pages() + canaries;
      break;
    case v1::BUFFER_LOCAL:
      local = fx.pages() + canaries;
      break;
    case v1::BUFFER_MIXED_SG:
      foreign = fx.pages() / 2;
      local = fx.pages() / 2 + canaries;
      break;
    default:
      break;
  }
  const std::string needs = fmt::format("{} ({}-bit mask)", PlacementWords(fx.placement()), mask);
  if (fx.placement() != v1::PLACEMENT_ANY) {
    if (!layout) {
      // Xen places the memory: refuse only what no RAM bank of the board can meet.
      if (Frames(board.ram(), {}, fx.placement(), board.dma(), mask, 1) == 0)
        return fmt::format("the fixture needs pages {}, and no RAM of this board is", needs);
    } else {
      const v1::XenLayout& x = board.xen();
      if (foreign != 0) {
        const uint64_t n = Frames(x.domu_ram(), {}, fx.placement(), board.dma(), mask, foreign);
        if (n < foreign)
          return fmt::format("the fixture needs {} domU pages {}; this board's domU RAM has {}",
                             foreign, needs, n);
      }
      if (local != 0) {
        const uint64_t n = Frames(x.dom0_ram(), {&x.grant_map_region(), &x.swiotlb_pool()},
                                  fx.placement(), board.dma(), mask, local);
        if (n < local)
          return fmt::format("the fixture needs {} dom0 pages {}; this board's dom0 RAM has {}",
                             local, needs, n);
      }
    }
  }
  if ((fx.placement() == v1::PLACEMENT_NEEDS_BOUNCE || fx.expect_bounce()) && layout) {
    const v1::MemoryBank& pool = board.xen().swiotlb_pool();
    if (pool.size() == 0 || !DeviceReaches(board.dma(), mask, pool.base(), pool.size()))
      return fmt::format(
          "no bounce is possible: the swiotlb pool {} is itself beyond the device's reach "
          "with a {}-bit mask, so Linux fails every mapping that needs one",
          Range(pool), mask);
  }
  return "";
}

std::string PvBlockNotApplicableReason(const v1::Fixture& fixture, const v1::AgentInfo& guest,
                                       bool disk_visible, uint32_t line_size,
                                       std::string_view unseen) {
  if (guest.block_device().empty())
    return "the domU's agent has no block device (--block-device): this board gives the domU "
           "no PV disk";
  if (!disk_visible && !unseen.empty()) return std::string(unseen);
  if (!disk_visible)
    return "the controller cannot see the device side of this board's disk (a qemu-xen board "
           "with power.qemu.nvme_disk_mib: its nvme.img)";
  const v1::PvBlock& b = fixture.block();
  const uint64_t bytes = PvBlockBytes(fixture);
  const uint32_t sector = guest.block_sector_size();
  if (sector == 0 || b.buffer_offset() % sector != 0 || b.disk_offset() % sector != 0 ||
      bytes % sector != 0 || bytes < uint64_t{std::max(1u, b.segments())} * sector)
    return fmt::format(
        "{} has {}-byte sectors: this fixture's I/O (buffer offset {}, disk offset {}, {} bytes "
        "in {} pieces) is not whole sectors of it",
        guest.block_device(), sector, b.buffer_offset(), b.disk_offset(), bytes,
        std::max(1u, b.segments()));
  if (line_size == 0 || b.buffer_offset() % line_size != 0 || bytes % line_size != 0)
    return fmt::format(
        "the I/O (buffer offset {}, {} bytes) does not start and end on the "
        "board's {}-byte cache lines",
        b.buffer_offset(), bytes, line_size);
  if (b.disk_offset() + bytes > guest.block_bytes())
    return fmt::format("{} holds {} bytes; this fixture's I/O ends at byte {}",
                       guest.block_device(), guest.block_bytes(), b.disk_offset() + bytes);
  return "";
}

}  // namespace dmahil::controller
