#include "controller/run/driver_audit.h"

#include <fmt/format.h>

#include "controller/report/names.h"

namespace dmahil::controller {
namespace {

const char* PathName(const DriverMapping& m) { return m.read_path ? "read path" : "write path"; }

v1::IoPath PathOf(const DriverMapping& m) {
  return m.read_path ? v1::IO_PATH_READ : v1::IO_PATH_WRITE;
}

std::string DirName(v1::DmaDirection d) { return v1::DmaDirection_Name(d); }

bool HasSegmentAt(const DriverMapping& m, uint64_t dma_addr) {
  for (const v1::DmaSegment& s : m.segments)
    if (s.dma_addr() == dma_addr) return true;
  return false;
}

/// The foreign pages of `m` not bounced: what the maintenance audit judges, once the
/// mapping was unmapped (a mapping still live has only its map side to show).
std::vector<v1::DmaSegment> MaintainedForeign(const DriverMapping& m) {
  std::vector<v1::DmaSegment> out;
  if (!m.unmapped) return out;
  for (const v1::DmaSegment& s : m.segments)
    if (s.foreign() && !s.bounced()) out.push_back(s);
  return out;
}

v1::Maintenance MaintenanceOf(const v1::DeviceOp& op, bool audited) {
  v1::Maintenance m;
  m.set_audited(audited);
  for (const v1::CacheOp& c : op.maintenance()) *m.add_ops() = c;
  return m;
}

}  // namespace

void GroupDriverOps(const v1::DeviceOps& ops, bool read_path, std::vector<DriverMapping>* out) {
  const bool audited = ops.maintenance_audited();
  uint64_t call = 0;
  DriverMapping* current = nullptr;  // the mapping of `call`, while its MAP entries come
  for (const v1::DeviceOp& op : ops.ops()) {
    if (op.kind() == v1::DEVICE_OP_MAP) {
      if (current == nullptr || op.call() != call) {
        out->emplace_back();
        current = &out->back();
        call = op.call();
        current->direction = op.direction();
        current->read_path = read_path;
        current->maintenance.push_back(
            {MaintenancePhase::kBeforeDevice, MaintenanceOf(op, audited)});
      }
      v1::DmaSegment s;
      const v1::DmaSegment* last = current->segments.empty() ? nullptr : &current->segments.back();
      s.set_offset(last == nullptr ? 0 : last->offset() + last->length());
      s.set_length(op.length());
      s.set_dma_addr(op.dma_addr());
      s.set_pfn(op.pfn());
      s.set_bfn(op.bfn());
      s.set_foreign(op.foreign());
      s.set_bounced(op.bounced());
      s.set_bfn_pfn_valid(op.bfn_pfn_valid());
      current->segments.push_back(s);
      // The expected address rides in the segment's place for AuditDriver.
      current->expected.push_back(op.expected_dma_addr());
      continue;
    }
    current = nullptr;
    // An unmap or sync: the latest live mapping that has a segment at this address.
    DriverMapping* owner = nullptr;
    for (auto it = out->rbegin(); it != out->rend() && owner == nullptr; ++it)
      if (!it->unmapped && HasSegmentAt(*it, op.dma_addr())) owner = &*it;
    if (owner == nullptr) continue;
    const bool before = op.kind() == v1::DEVICE_OP_SYNC_FOR_DEVICE;
    // An unmap_sg gives one op per entry and the call's maintenance on the first.
    if (op.maintenance_size() > 0 || owner->maintenance.empty() ||
        owner->maintenance.back().phase !=
            (before ? MaintenancePhase::kBeforeDevice : MaintenancePhase::kAfterDevice))
      owner->maintenance.push_back(
          {before ? MaintenancePhase::kBeforeDevice : MaintenancePhase::kAfterDevice,
           MaintenanceOf(op, audited)});
    if (op.kind() == v1::DEVICE_OP_UNMAP) owner->unmapped = true;
  }
}

std::optional<DriverFinding> AuditDriver(const v1::Board& board, const DriverEvidence& ev) {
  if (ev.dropped > 0) {
    DriverFinding f;
    f.verdict = v1::VERDICT_ERROR;
    f.detail = fmt::format(
        "dom0's dmahil.ko lost {} records of {}'s DMA-API traffic (its ring was full): the "
        "driver audit is incomplete",
        ev.dropped, ev.device);
    return f;
  }
  if (ev.dma_direct) {
    DriverFinding f;
    f.diagnosis = v1::DIAGNOSIS_WRONG_BUS_ADDRESS;
    f.path = v1::IO_PATH_WRITE_AND_READ;
    f.detail = fmt::format(
        "write and read paths: {} has no DMA-mapping ops in dom0 (dma-direct maps it, bypassing "
        "swiotlb-xen), so each foreign page blkback hands it gets its dom0 pfn's bus address "
        "instead of its machine frame's (include/xen/arm/xen-ops.h xen_setup_dma_ops)",
        ev.device);
    return f;
  }
  for (const DriverMapping& m : ev.mappings) {
    for (size_t i = 0; i < m.segments.size(); ++i) {
      const v1::DmaSegment& s = m.segments[i];
      if (s.bounced() || s.dma_addr() == m.expected[i]) continue;
      DriverFinding f;
      f.diagnosis = v1::DIAGNOSIS_WRONG_BUS_ADDRESS;
      f.displacement = static_cast<int64_t>(s.dma_addr() - m.expected[i]);
      f.path = PathOf(m);
      f.detail = fmt::format(
          "{}: {} mapped {} pfn {:#x} ({}, bfn {:#x}) {} at bus address {:#x}, expected {:#x} "
          "(phys_to_dma of its machine address): displacement {}",
          PathName(m), ev.device, s.foreign() ? "foreign" : "local", s.pfn(),
          s.foreign() ? "a domU's page" : "dom0's own", s.bfn(), DirName(m.direction), s.dma_addr(),
          m.expected[i], report::SignedHex(f.displacement));
      return f;
    }
  }
  if (ev.coherent || !ev.maintenance_audited) return std::nullopt;
  for (const DriverMapping& m : ev.mappings) {
    const std::vector<v1::DmaSegment> foreign = MaintainedForeign(m);
    if (foreign.empty()) continue;
    if (std::optional<MaintenanceFinding> mf =
            AuditMaintenance(board, m.direction, foreign, m.maintenance)) {
      DriverFinding f;
      f.verdict = mf->verdict;
      f.diagnosis = mf->diagnosis;
      f.displacement = mf->displacement;
      f.path = PathOf(m);
      f.detail = fmt::format("{}: {}'s {} mapping of {} foreign pages: {}", PathName(m), ev.device,
                             DirName(m.direction), foreign.size(), mf->detail);
      return f;
    }
  }
  return std::nullopt;
}

std::optional<DriverFinding> ReadNotCopiedBack(const DriverEvidence& ev, uint64_t wrong_lines) {
  if (wrong_lines == 0) return std::nullopt;
  uint64_t bounced = 0;
  uint64_t mappings = 0;
  for (const DriverMapping& m : ev.mappings) {
    if (!m.read_path) continue;
    bool any = false;
    for (const v1::DmaSegment& s : m.segments) {
      if (!s.foreign()) continue;
      if (!s.bounced()) return std::nullopt;
      any = true;
      ++bounced;
    }
    mappings += any;
  }
  if (bounced == 0) return std::nullopt;
  DriverFinding f;
  f.diagnosis = v1::DIAGNOSIS_NEVER_LANDED;
  f.path = v1::IO_PATH_READ;
  f.detail = fmt::format(
      "read path: {} bounced every foreign page it mapped for the read ({} entries in {} "
      "mappings) through swiotlb slots at their right bus addresses, yet {} lines the domU read "
      "are not what the device wrote: the slots were not copied back to the pages at unmap "
      "(kernel/dma/swiotlb.c swiotlb_tbl_unmap_single)",
      ev.device, bounced, mappings, wrong_lines);
  return f;
}

std::vector<v1::SegmentReport> DriverForeignPages(const DriverEvidence& ev) {
  std::vector<v1::SegmentReport> out;
  for (const DriverMapping& m : ev.mappings)
    for (size_t i = 0; i < m.segments.size(); ++i) {
      const v1::DmaSegment& s = m.segments[i];
      if (!s.foreign()) continue;
      v1::SegmentReport r;
      r.set_page(static_cast<uint32_t>(out.size()));
      r.set_pfn(s.pfn());
      r.set_bfn(s.bfn());
      r.set_dma_addr(s.dma_addr());
      r.set_expected_dma_addr(m.expected[i]);
      r.set_bounced(s.bounced());
      r.set_foreign(true);
      r.set_bfn_pfn_valid(s.bfn_pfn_valid());
      out.push_back(r);
    }
  return out;
}

std::string DescribeDriver(const DriverEvidence& ev) {
  uint64_t foreign = 0, bounced = 0, local = 0, judged = 0;
  for (const DriverMapping& m : ev.mappings) {
    if (!MaintainedForeign(m).empty()) ++judged;
    for (const v1::DmaSegment& s : m.segments) {
      if (!s.foreign()) {
        ++local;
        continue;
      }
      ++foreign;
      if (s.bounced()) ++bounced;
    }
  }
  return fmt::format(
      "{} made {} mappings, {} entries on foreign pages ({} bounced) and {} on dom0's own, "
      "every one not bounced at its expected bus address; maintenance {}",
      ev.device, ev.mappings.size(), foreign, bounced, local,
      ev.coherent ? std::string("not needed (coherent)")
      : ev.maintenance_audited
          ? fmt::format("as each direction needs in the {} unmapped mappings of foreign pages",
                        judged)
          : std::string("not audited (dmahil.ko's probes are not armed)"));
}

}  // namespace dmahil::controller
