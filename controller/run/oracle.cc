#include "controller/run/oracle.h"

#include <map>

#include <fmt/format.h>

#include "common/dma_ranges.h"
#include "common/xen_page.h"
#include "controller/report/names.h"

namespace dmahil::controller {
namespace {

std::string DirName(v1::DmaDirection d) { return v1::DmaDirection_Name(d); }

const char* StaleWhy(bool device_read) {
  return device_read
             ? "the device read memory older than the CPU's dirty lines: missing clean before "
               "DMA_TO_DEVICE"
             : "the CPU read cache lines older than what the device wrote: missing invalidate "
               "on unmap/sync_for_cpu";
}

// DeviceMayWrite of a segment already audited.
bool MayWrite(const SegmentAudit& a, const v1::DmaSegment& s) {
  return !s.write_refused() && !a.wrong_address && !a.unreachable;
}

}  // namespace

SegmentAudit AuditSegment(const v1::Board& board, uint32_t dma_mask_bits, const v1::DmaSegment& s) {
  SegmentAudit a;
  const uint64_t limit = DmaLimit(board.dma(), dma_mask_bits);
  auto reachable = [&](uint64_t dma) {
    return dma != kNoTranslation && dma + s.length() - 1 <= limit &&
           DmaToPhys(board.dma(), dma) != kNoTranslation;
  };
  if (s.bounced()) {
    // Where in the pool swiotlb bounced to is the kernel's choice; it must be reachable.
    a.expected_dma_addr = s.dma_addr();
    a.unreachable = !reachable(s.dma_addr());
    const uint64_t as_phys = PhysToDma(board.dma(), s.dma_addr());
    if (a.unreachable && as_phys != kNoTranslation && reachable(as_phys)) {
      // The bounce buffer's CPU physical address was handed out as its bus address.
      a.expected_dma_addr = as_phys;
      a.wrong_address = true;
      a.displacement = static_cast<int64_t>(s.dma_addr() - as_phys);
    }
    return a;
  }
  const uint64_t phys = (s.bfn() * kXenPageSize) | (s.offset() % kXenPageSize);
  a.expected_dma_addr = PhysToDma(board.dma(), phys);
  if (a.expected_dma_addr == kNoTranslation) {
    // Outside every dma-range: extrapolate with the first range's offset, so a wrong
    // address still gets its exact displacement; the device cannot reach it either way.
    const v1::DmaRange& r = board.dma().dma_ranges(0);
    a.expected_dma_addr = phys - r.cpu_base() + r.bus_base();
  }
  a.should_have_bounced = !reachable(a.expected_dma_addr);
  a.unreachable = !reachable(s.dma_addr());
  if (s.dma_addr() != a.expected_dma_addr) {
    a.wrong_address = true;
    a.displacement = static_cast<int64_t>(s.dma_addr() - a.expected_dma_addr);
  }
  return a;
}

bool DeviceMayWrite(const v1::Board& board, uint32_t dma_mask_bits, const v1::DmaSegment& s) {
  return MayWrite(AuditSegment(board, dma_mask_bits, s), s);
}

void Diagnose(const v1::Board& board, const Evidence& ev, v1::FixtureResult* r) {
  // Line map and per-class counts.
  const uint64_t first_line = ev.buffer_offset / ev.line_size;
  const uint64_t lines = ev.buffer_bytes / ev.line_size;
  const uint64_t per_page = kXenPageSize / ev.line_size;
  std::string map(lines, '.');
  std::map<v1::LineClass, uint64_t> count;
  const v1::LineFinding* first_misplaced = nullptr;
  for (const v1::LineFinding& f : ev.findings) {
    ++count[f.cls()];
    if (f.line() >= first_line && f.line() - first_line < lines)
      map[f.line() - first_line] = report::LineGlyph(f.cls());
    if (f.cls() == v1::LINE_MISPLACED && first_misplaced == nullptr) first_misplaced = &f;
  }
  r->clear_line_map();
  for (uint64_t p = 0; p * per_page < lines; ++p)
    r->add_line_map(map.substr(p * per_page, per_page));
  const uint64_t bad = ev.findings.size();
  r->set_mismatching_lines(bad);
  r->set_lines_checked(ev.lines_checked);

  // The mapping audit.
  r->clear_segments();
  const v1::DmaSegment* wrong = nullptr;
  const v1::DmaSegment* unreachable = nullptr;
  const v1::DmaSegment* refused = nullptr;  // refused by the agent, right by the audit
  SegmentAudit wrong_audit;
  SegmentAudit refused_audit;
  bool wrong_should_bounce = false;
  bool stale_on_bounce = false;
  for (const v1::DmaSegment& s : ev.segments) {
    const SegmentAudit a = AuditSegment(board, ev.dma_mask_bits, s);
    v1::SegmentReport* sr = r->add_segments();
    sr->set_page(static_cast<uint32_t>((s.offset() - ev.buffer_offset) / kXenPageSize));
    sr->set_pfn(s.pfn());
    sr->set_bfn(s.bfn());
    sr->set_dma_addr(s.dma_addr());
    sr->set_expected_dma_addr(a.expected_dma_addr);
    sr->set_bounced(s.bounced());
    sr->set_foreign(s.foreign());
    sr->set_unreachable(a.unreachable);
    sr->set_write_refused(!MayWrite(a, s));
    sr->set_bfn_pfn_valid(s.bfn_pfn_valid());
    if (s.write_refused() && !a.wrong_address && !a.unreachable && refused == nullptr) {
      refused = &s;
      refused_audit = a;
    }
    if (a.wrong_address && wrong == nullptr) {
      wrong = &s;
      wrong_audit = a;
    }
    if (a.unreachable && !a.wrong_address && unreachable == nullptr) unreachable = &s;
    if (a.wrong_address && a.should_have_bounced && wrong == &s) wrong_should_bounce = true;
    if (s.bounced()) {
      for (const v1::LineFinding& f : ev.findings)
        if (f.line() * ev.line_size >= s.offset() &&
            f.line() * ev.line_size < s.offset() + s.length() && f.cls() == v1::LINE_STALE)
          stale_on_bounce = true;
    }
  }

  const std::string lines_note =
      bad == 0 ? "data matched" : fmt::format("{} of {} lines wrong", bad, ev.lines_checked);
  auto fail = [&](v1::Diagnosis d, std::string detail) {
    r->set_verdict(v1::VERDICT_FAIL);
    r->set_diagnosis(d);
    r->set_detail(std::move(detail));
  };

  // Coverage: the segments must tile [buffer_offset, buffer_offset + buffer_bytes) and
  // every line must have been checked by someone.
  const uint64_t dma_offset = ev.dma_bytes != 0 ? ev.dma_offset : ev.buffer_offset;
  const uint64_t dma_bytes = ev.dma_bytes != 0 ? ev.dma_bytes : ev.buffer_bytes;
  uint64_t covered = dma_offset;
  for (const v1::DmaSegment& s : ev.segments)
    if (s.offset() == covered) covered += s.length();
  const uint64_t sides = (ev.direction == v1::DMA_BIDIRECTIONAL) ? 2 : 1;
  if (!ev.segments_known) covered = dma_offset + dma_bytes;
  if (covered != dma_offset + dma_bytes || ev.lines_checked < sides * lines) {
    r->set_verdict(v1::VERDICT_ERROR);
    r->set_diagnosis(v1::DIAGNOSIS_NONE);
    r->set_detail(
        fmt::format("incomplete run: the mapping covers {:#x} of {:#x} bytes and {} of "
                    "{} lines were checked",
                    covered - ev.buffer_offset, ev.buffer_bytes, ev.lines_checked, sides * lines));
    return;
  }

  if (wrong != nullptr) {
    r->set_displacement(wrong_audit.displacement);
    fail(v1::DIAGNOSIS_WRONG_BUS_ADDRESS,
         fmt::format(
             "{} pfn {:#x} ({}{}, bfn {:#x}) got bus address {:#x}, expected {:#x}{}: "
             "displacement {}; {}",
             DirName(ev.direction), wrong->pfn(), wrong->foreign() ? "foreign" : "local",
             wrong->bounced() ? ", bounced" : "", wrong->bfn(), wrong->dma_addr(),
             wrong_audit.expected_dma_addr,
             wrong_should_bounce ? " (beyond the device's reach: it should have bounced)" : "",
             report::SignedHex(wrong_audit.displacement), lines_note));
    return;
  }
  if (unreachable != nullptr) {
    fail(v1::DIAGNOSIS_STRAY_DMA,
         fmt::format("pfn {:#x} (bfn {:#x}) mapped at bus {:#x}, beyond the device's reach "
                     "({}-bit mask / dma-ranges) and not bounced: the device drives a "
                     "truncated address; {}",
                     unreachable->pfn(), unreachable->bfn(), unreachable->dma_addr(),
                     ev.dma_mask_bits, lines_note));
    return;
  }
  if (refused != nullptr) {
    r->set_displacement(refused_audit.displacement);
    fail(
        v1::DIAGNOSIS_WRONG_BUS_ADDRESS,
        fmt::format("{} pfn {:#x} ({}{}, bfn {:#x}) got bus address {:#x}, which dom0's agent "
                    "refused to let the device write: it is neither phys_to_dma of the page's "
                    "machine address nor a swiotlb slot within the device's reach (the board file "
                    "expects {:#x}: does its dma-ranges match the device?); displacement {}; {}",
                    DirName(ev.direction), refused->pfn(), refused->foreign() ? "foreign" : "local",
                    refused->bounced() ? ", bounced" : "", refused->bfn(), refused->dma_addr(),
                    refused_audit.expected_dma_addr, report::SignedHex(refused_audit.displacement),
                    lines_note));
    return;
  }
  if (ev.driver) {
    for (const v1::SegmentReport& s : DriverForeignPages(*ev.driver)) *r->add_segments() = s;
    std::optional<DriverFinding> f = AuditDriver(board, *ev.driver);
    if (!f && ev.device_read_findings == 0) f = ReadNotCopiedBack(*ev.driver, ev.findings.size());
    if (f) {
      r->set_verdict(f->verdict);
      r->set_diagnosis(f->diagnosis);
      r->set_displacement(f->displacement);
      r->set_io_path(f->path);
      r->set_detail(fmt::format("{}; {}", f->detail, lines_note));
      return;
    }
  }
  if (ev.canary_mismatches > 0) {
    fail(v1::DIAGNOSIS_STRAY_DMA, fmt::format("{} canary lines next to the buffer changed; {}",
                                              ev.canary_mismatches, lines_note));
    return;
  }
  if (!board.dma().coherent() && ev.segments_known) {
    if (std::optional<MaintenanceFinding> f =
            AuditMaintenance(board, ev.direction, ev.segments, ev.maintenance)) {
      r->set_verdict(f->verdict);
      r->set_diagnosis(f->diagnosis);
      r->set_displacement(f->displacement);
      r->set_detail(fmt::format("{}; {}", f->detail, lines_note));
      return;
    }
  }
  if (bad == 0) {
    // A fixture about swiotlb proves nothing about it unless every page went through it;
    // where the hypervisor, not the fixture, placed the pages (Xen on a qemu-xen board), it
    // can put them within reach, and the fixture could not run its case.
    for (const v1::DmaSegment& s : ev.segments) {
      if (!ev.needs_bounce || s.bounced()) continue;
      r->set_verdict(v1::VERDICT_NOT_APPLICABLE);
      r->set_diagnosis(v1::DIAGNOSIS_NONE);
      r->set_detail(fmt::format(
          "the fixture needs every page bounced, but pfn {:#x} (bfn {:#x}) was mapped directly "
          "within the {}-bit mask: this board placed the buffer where swiotlb is not exercised",
          s.pfn(), s.bfn(), ev.dma_mask_bits));
      return;
    }
    r->set_verdict(v1::VERDICT_PASS);
    r->set_diagnosis(v1::DIAGNOSIS_NONE);
    r->set_detail(fmt::format("{} lines ok", ev.lines_checked));
    return;
  }
  if (first_misplaced != nullptr) {
    if (first_misplaced->found_buffer() != (ev.buffer_id & 0xFFFF)) {
      // Another buffer's line: the offset between two buffers says nothing about the bus.
      fail(v1::DIAGNOSIS_WRONG_BUS_ADDRESS,
           fmt::format("line {} holds line {} of another buffer ({}): the device went to "
                       "someone else's memory; {}",
                       first_misplaced->line(), first_misplaced->found_line(),
                       first_misplaced->found_buffer(), lines_note));
      return;
    }
    const int64_t disp = (static_cast<int64_t>(first_misplaced->found_line()) -
                          static_cast<int64_t>(first_misplaced->line())) *
                         static_cast<int64_t>(ev.line_size);
    r->set_displacement(disp);
    fail(v1::DIAGNOSIS_WRONG_BUS_ADDRESS,
         fmt::format("line {} holds line {} of the same buffer: displacement {}; {}",
                     first_misplaced->line(), first_misplaced->found_line(),
                     report::SignedHex(disp), lines_note));
    return;
  }
  if (count[v1::LINE_BUS_ERROR] > 0) {
    fail(v1::DIAGNOSIS_NEVER_LANDED,
         fmt::format("{} lines hit a bus error: the addresses do not decode; {}",
                     count[v1::LINE_BUS_ERROR], lines_note));
    return;
  }
  if (count[v1::LINE_TORN] > 0) {
    fail(v1::DIAGNOSIS_TORN_LINE,
         fmt::format("{} lines half old, half new: partial maintenance; {}", count[v1::LINE_TORN],
                     lines_note));
    return;
  }
  if (count[v1::LINE_STALE] > 0) {
    if (stale_on_bounce && ev.direction != v1::DMA_TO_DEVICE) {
      fail(v1::DIAGNOSIS_NEVER_LANDED,
           fmt::format("the device wrote the swiotlb bounce buffer but the old data is still "
                       "in the buffer: the bounce was not copied back for the CPU (or the bounce "
                       "buffer was read stale before the copy); {}",
                       lines_note));
      return;
    }
    bool device_read_stale = false;
    for (size_t i = 0; i < ev.device_read_findings && i < ev.findings.size(); ++i)
      device_read_stale |= ev.findings[i].cls() == v1::LINE_STALE;
    fail(v1::DIAGNOSIS_STALE_LINE,
         fmt::format("{} stale lines in {}: {}; {}", count[v1::LINE_STALE], DirName(ev.direction),
                     StaleWhy(device_read_stale), lines_note));
    return;
  }
  fail(v1::DIAGNOSIS_NEVER_LANDED,
       fmt::format("{} zero and {} unknown lines: the data never landed; {}", count[v1::LINE_ZERO],
                   count[v1::LINE_CORRUPT], lines_note));
}

}  // namespace dmahil::controller
