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

  // Where each segment's maintenance must land: its machine range, and for arch_sync ops
  // also its pfn alias (the ballooned pfn of a dom0-local grant).
  struct Want {
    Range machine, alias;
  };
  std::vector<Want> wants;
  for (const v1::DmaSegment& s : segments) {
    const uint64_t machine = DmaToPhys(board.dma(), s.dma_addr());
    const uint64_t pfn_addr = (s.pfn() << 12) + s.dma_addr() % 4096;
    wants.push_back({{machine, machine + s.length()}, {pfn_addr, pfn_addr + s.length()}});
  }
  const auto overlaps = [](Range a, Range b) { return a.lo < b.hi && b.lo < a.hi; };
  // The range `op` counts for on segment i, translated onto its machine range, if any.
  const auto on_segment = [&](const v1::CacheOp& op, size_t i) -> std::optional<Range> {
    const Range got{op.addr(), op.addr() + op.length()};
    if (overlaps(got, wants[i].machine)) return got;
    if (op.kind() == v1::CACHE_OP_ARCH_SYNC && !segments[i].bounced() &&
        overlaps(got, wants[i].alias))
      return Range{got.lo - wants[i].alias.lo + wants[i].machine.lo,
                   got.hi - wants[i].alias.lo + wants[i].machine.lo};
    return std::nullopt;
  };

  for (size_t i = 0; i < segments.size(); ++i) {
    const v1::DmaSegment& s = segments[i];
    const Range want = wants[i].machine;
    for (const Need& n : needs) {
      std::vector<Range> parts;
      size_t issued = 0;                   // ops of the right kind in this phase
      const v1::CacheOp* stray = nullptr;  // of those not on this segment, the nearest
      uint64_t stray_gap = ~uint64_t{0};
      for (const MaintenanceRecord& r : records) {
        if (r.phase != n.phase) continue;
        for (const v1::CacheOp& op : r.maintenance.ops()) {
          if (!((n.clean_ok && op.clean()) || (n.inval_ok && op.invalidate()))) continue;
          ++issued;
          if (std::optional<Range> on = on_segment(op, i)) {
            parts.push_back(*on);
            continue;
          }
          const uint64_t gap = op.addr() > want.lo ? op.addr() - want.lo : want.lo - op.addr();
          if (gap < stray_gap) {
            stray_gap = gap;
            stray = &op;
          }
        }
      }
      if (Covers(parts, want)) continue;
      const std::string page =
          fmt::format("pfn {:#x} ({}, bfn {:#x}, bus {:#x}, {} bytes)", s.pfn(),
                      s.foreign() ? "foreign" : "local", s.bfn(), s.dma_addr(), s.length());
      if (!parts.empty()) {
        uint64_t covered = 0;
        for (const Range& r : parts)
          covered += std::min(r.hi, want.hi) - std::max(r.lo, std::min(want.hi, r.lo));
        return MaintenanceFinding{
            v1::VERDICT_FAIL, v1::DIAGNOSIS_MISSING_MAINTENANCE, 0,
            fmt::format("{}: the {} of {} covers only part of it (about {} of {} bytes)",
                        v1::DmaDirection_Name(dir), n.what, page,
                        std::min<uint64_t>(covered, s.length()), s.length())};
      }
      // Misaddressed only if the kernel issued one op per page or more: fewer, and this
      // page's op is simply missing (the nearest op then is its neighbour's).
      if (stray == nullptr || issued < segments.size())
        return MaintenanceFinding{
            v1::VERDICT_FAIL, v1::DIAGNOSIS_MISSING_MAINTENANCE, 0,
            fmt::format("{}: no {} of {}: the kernel issued none (non-coherent engine)",
                        v1::DmaDirection_Name(dir), n.what, page)};
      const auto disp = static_cast<int64_t>(stray->addr() - want.lo);
      return MaintenanceFinding{
          v1::VERDICT_FAIL, v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE, disp,
          fmt::format(
              "{}: the {} of {} went to {} {:#x} (+{} bytes) instead of {:#x}: "
              "displacement {}",
              v1::DmaDirection_Name(dir), n.what, page,
              stray->kind() == v1::CACHE_OP_HYPERCALL ? "machine address" : "physical address",
              stray->addr(), stray->length(), want.lo, report::SignedHex(disp))};
    }
  }
  return std::nullopt;
}

}  // namespace dmahil::controller
