#include "controller/run/maintenance_audit.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/dma_ranges.h"
#include "controller/report/names.h"

namespace dmahil::controller {
namespace {

struct Range {
  uint64_t lo, hi;  // [lo, hi)
};

const char* DirName(v1::DmaDirection d) {
  switch (d) {
    case v1::DMA_TO_DEVICE:
      return "DMA_TO_DEVICE";
    case v1::DMA_FROM_DEVICE:
      return "DMA_FROM_DEVICE";
    default:
      return "DMA_BIDIRECTIONAL";
  }
}

/// Whether the union of `parts` covers `want`.
bool Covers(std::vector<Range> parts, Range want) {
  std::sort(parts.begin(), parts.end(), [](Range a, Range b) { return a.lo < b.lo; });
  uint64_t at = want.lo;
  for (const Range& p : parts) {
    if (p.lo > at) break;
    at = std::max(at, p.hi);
    if (at >= want.hi) return true;
  }
  return at >= want.hi;
}

struct Need {
  MaintenancePhase phase;
  bool clean_ok, inval_ok;
  const char* what;  // for the message
};

}  // namespace

std::optional<MaintenanceFinding> AuditMaintenance(const v1::Board& board, v1::DmaDirection dir,
                                                   const std::vector<v1::DmaSegment>& segments,
                                                   const std::vector<MaintenanceRecord>& records) {
  bool audited = false;
  uint32_t dropped = 0;
  for (const MaintenanceRecord& r : records) {
    audited |= r.maintenance.audited();
    dropped += r.maintenance.dropped();
  }
  if (!audited) return std::nullopt;
  if (dropped > 0)
    return MaintenanceFinding{v1::VERDICT_ERROR, v1::DIAGNOSIS_NONE, 0,
                              fmt::format("maintenance audit incomplete: dmahil.ko dropped {} "
                                          "records",
                                          dropped)};

  std::vector<Need> needs;
  const bool device_reads = dir != v1::DMA_FROM_DEVICE;
  const bool device_writes = dir != v1::DMA_TO_DEVICE;
  if (device_reads)
    needs.push_back({MaintenancePhase::kBeforeDevice, true, false, "clean before the device read"});
  else
    needs.push_back({MaintenancePhase::kBeforeDevice, true, true,
                     "clean or invalidate before the device write"});
  if (device_writes)
    needs.push_back(
        {MaintenancePhase::kAfterDevice, false, true, "invalidate before the CPU read"});

  for (const v1::DmaSegment& s : segments) {
    const uint64_t machine = DmaToPhys(board.dma(), s.dma_addr());
    const Range want{machine, machine + s.length()};
    const uint64_t pfn_addr = (s.pfn() << 12) + s.dma_addr() % 4096;
    const Range alias{pfn_addr, pfn_addr + s.length()};
    for (const Need& n : needs) {
      std::vector<Range> parts;
      const v1::CacheOp* nearest = nullptr;  // of the right op, nearest to the segment
      uint64_t nearest_gap = ~uint64_t{0};
      for (const MaintenanceRecord& r : records) {
        if (r.phase != n.phase) continue;
        for (const v1::CacheOp& op : r.maintenance.ops()) {
          if (!((n.clean_ok && op.clean()) || (n.inval_ok && op.invalidate()))) continue;
          const Range got{op.addr(), op.addr() + op.length()};
          const bool hits_alias = op.kind() == v1::CACHE_OP_ARCH_SYNC && !s.bounced() &&
                                  got.lo < alias.hi && alias.lo < got.hi;
          if (hits_alias) {
            // The pfn alias: translate onto the machine range.
            parts.push_back({got.lo - alias.lo + want.lo, got.hi - alias.lo + want.lo});
          } else {
            parts.push_back(got);
          }
          const uint64_t gap = got.lo > want.lo ? got.lo - want.lo : want.lo - got.lo;
          if (gap < nearest_gap) {
            nearest_gap = gap;
            nearest = &op;
          }
        }
      }
      if (Covers(parts, want)) continue;
      const std::string page =
          fmt::format("pfn {:#x} ({}, bfn {:#x}, bus {:#x}, {} bytes)", s.pfn(),
                      s.foreign() ? "foreign" : "local", s.bfn(), s.dma_addr(), s.length());
      if (nearest == nullptr)
        return MaintenanceFinding{
            v1::VERDICT_FAIL, v1::DIAGNOSIS_MISSING_MAINTENANCE, 0,
            fmt::format("{}: no {} of {}: the kernel issued none (non-coherent engine)",
                        DirName(dir), n.what, page)};
      const auto disp = static_cast<int64_t>(nearest->addr() - want.lo);
      return MaintenanceFinding{
          v1::VERDICT_FAIL, v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE, disp,
          fmt::format(
              "{}: the {} of {} went to {} {:#x} (+{} bytes) instead of {:#x}: "
              "displacement {}",
              DirName(dir), n.what, page,
              nearest->kind() == v1::CACHE_OP_HYPERCALL ? "machine address" : "physical address",
              nearest->addr(), nearest->length(), want.lo, report::SignedHex(disp))};
    }
  }
  return std::nullopt;
}

}  // namespace dmahil::controller
