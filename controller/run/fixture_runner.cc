#include "controller/run/fixture_runner.h"

#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/pattern.h"
#include "common/xen_page.h"
#include "controller/device/device_client.h"
#include "controller/run/applicability.h"
#include "controller/run/oracle.h"

namespace dmahil::controller {
namespace {

v1::PatternSpec Pattern(uint64_t seed, uint32_t buffer_id, uint32_t generation, uint64_t offset,
                        uint32_t line_size) {
  v1::PatternSpec p;
  p.set_seed(seed);
  p.set_buffer_id(buffer_id & 0xFFFF);
  p.set_generation(generation & 0xFFFF);
  p.set_first_line(static_cast<uint32_t>(offset / line_size));
  p.set_line_size(line_size);
  return p;
}

/// The buffers of one fixture run: who owns the data (the domU for foreign grants, dom0
/// for local pages) and dom0's handle for DMA.
struct Buffers {
  AgentClient* owner = nullptr;
  uint32_t owner_buffer = 0;
  uint32_t dom0_buffer = 0;
  std::vector<std::pair<AgentClient*, uint32_t>> held;  // released in reverse order
};

class Run {
 public:
  Run(BoardLink& link, const v1::Board& board, const v1::Fixture& fx, uint64_t seed,
      uint32_t buffer_id)
      : link_(link),
        board_(board),
        fx_(fx),
        seed_(seed),
        id_(buffer_id),
        line_(link.line_size),
        total_bytes_((fx.pages() + 2 * fx.canary_pages()) * kXenPageSize),
        // A mixed scatterlist starts and ends half a page in: its entries cross pages and
        // the half pages around it are checked as canaries (the CPU's neighbouring data).
        off_(fx.canary_pages() * kXenPageSize + (Mixed() ? kXenPageSize / 2 : 0)),
        len_(fx.pages() * kXenPageSize - (Mixed() ? kXenPageSize : 0)) {}

  bool Mixed() const { return fx_.source() == v1::BUFFER_MIXED_SG; }

  void Allocate() {
    const uint32_t total = fx_.pages() + 2 * fx_.canary_pages();
    if (fx_.source() == v1::BUFFER_FOREIGN_GRANT) {
      const uint32_t dom0_buffer = Foreign(total);
      b_.owner = &link_.guest;
      b_.dom0_buffer = dom0_buffer;
    } else if (Mixed()) {
      // Pairs of foreign pages and pairs of local pages, canaries local.
      const uint32_t half = fx_.pages() / 2;
      const uint32_t c = fx_.canary_pages();
      const uint32_t foreign = Foreign(half);
      const uint32_t local = Hold(
          link_.dom0, link_.dom0.AllocLocal(half + 2 * c, fx_.placement(), fx_.dma_mask_bits()));
      std::vector<std::pair<uint32_t, uint32_t>> pages;
      for (uint32_t i = 0; i < c; ++i) pages.emplace_back(local, i);
      for (uint32_t k = 0; k < half; k += 2)
        for (const auto& [buf, first] : {std::pair{foreign, k}, std::pair{local, c + k}})
          for (uint32_t j = 0; j < 2; ++j) pages.emplace_back(buf, first + j);
      for (uint32_t i = 0; i < c; ++i) pages.emplace_back(local, c + half + i);
      b_.owner = &link_.dom0;
      b_.owner_buffer = b_.dom0_buffer = Hold(link_.dom0, link_.dom0.ComposeBuffer(pages));
    } else {
      b_.owner = &link_.dom0;
      b_.owner_buffer = b_.dom0_buffer =
          Hold(link_.dom0, link_.dom0.AllocLocal(total, fx_.placement(), fx_.dma_mask_bits()));
    }
    for (const auto& [at, bytes] : Canaries()) {
      b_.owner->Fill(b_.owner_buffer, at, bytes, Pattern(seed_, id_ + 1, 1, at, line_));
      b_.owner->Prime(b_.owner_buffer, at, bytes, v1::PRIME_CLEAN_INVALIDATE);
    }
  }

  /// The canary ranges (offset, bytes): the buffer outside [off_, off_ + len_).
  std::vector<std::pair<uint64_t, uint64_t>> Canaries() const {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    if (off_ > 0) out.emplace_back(0, off_);
    if (off_ + len_ < total_bytes_) out.emplace_back(off_ + len_, total_bytes_ - off_ - len_);
    return out;
  }

  /// Grants `pages` domU pages (twice with double_map) and maps them in dom0; returns the
  /// dom0 buffer. The guest buffer becomes the owner buffer.
  uint32_t Foreign(uint32_t pages) {
    const uint32_t grants = fx_.double_map() ? 2 : 1;
    const v1::AllocGrantsResponse g =
        link_.guest.AllocGrants(pages, 0, fx_.placement(), grants, fx_.dma_mask_bits());
    b_.owner_buffer = Hold(link_.guest, g.buffer());
    const uint32_t domid = link_.guest.GetInfo().domid();
    google::protobuf::RepeatedField<uint32_t> first(g.grefs().begin(), g.grefs().begin() + pages);
    uint32_t dom0_buffer = link_.dom0.MapForeign(domid, first).buffer();
    if (fx_.double_map()) {
      // The same frames again at other pfns; the first copy goes before the DMA.
      google::protobuf::RepeatedField<uint32_t> second(g.grefs().begin() + pages, g.grefs().end());
      const uint32_t again = link_.dom0.MapForeign(domid, second).buffer();
      link_.dom0.ReleaseBuffer(dom0_buffer);
      dom0_buffer = again;
    }
    return Hold(link_.dom0, dom0_buffer);
  }

  uint32_t Hold(AgentClient& agent, const v1::BufferInfo& info) {
    return Hold(agent, info.buffer());
  }
  uint32_t Hold(AgentClient& agent, uint32_t buffer) {
    b_.held.emplace_back(&agent, buffer);
    return buffer;
  }

  void Release() {
    Unmap();
    while (!b_.held.empty()) {
      const auto [agent, buffer] = b_.held.back();
      b_.held.pop_back();
      agent->ReleaseBuffer(buffer);
    }
    b_ = Buffers{};
  }

  /// One DMA transaction; returns its evidence. With fixture.reuse_mapping the buffer is
  /// mapped once and handed back and forth with dma_sync_single_for_device / _for_cpu.
  Evidence Iterate(uint32_t iteration) {
    const v1::DmaDirection dir = fx_.direction();
    const bool device_reads = dir != v1::DMA_FROM_DEVICE;
    const bool device_writes = dir != v1::DMA_TO_DEVICE;
    const uint32_t old_gen = 3 * iteration - 2;
    const uint32_t read_gen = 3 * iteration - 1;  // what the device must read
    const uint32_t write_gen = 3 * iteration;     // what the device writes
    Evidence ev;
    ev.direction = dir;
    ev.line_size = line_;
    ev.buffer_id = id_;
    ev.dma_mask_bits = fx_.dma_mask_bits() != 0 ? fx_.dma_mask_bits() : board_.dma().mask_bits();
    ev.needs_bounce = fx_.expect_bounce();
    ev.buffer_offset = off_;
    ev.buffer_bytes = len_;
    const uint64_t partial = fx_.partial_bytes();
    if (partial >= line_)
      throw std::runtime_error(
          fmt::format("partial_bytes {} is not below the board's {}-byte line", partial, line_));
    ev.dma_offset = off_ + partial;
    ev.dma_bytes = len_ - 2 * partial;
    const uint32_t max_findings = static_cast<uint32_t>(len_ / line_);
    bus_error_lines_.clear();

    // Old generation in memory, nothing cached.
    b_.owner->Fill(b_.owner_buffer, off_, len_, Pattern(seed_, id_, old_gen, off_, line_));
    b_.owner->Prime(b_.owner_buffer, off_, len_, v1::PRIME_CLEAN_INVALIDATE);
    if (device_reads) {
      // Prime: the data sits in dirty lines; only the clean for the device gets it out.
      b_.owner->Fill(b_.owner_buffer, off_, len_, Pattern(seed_, id_, read_gen, off_, line_));
    }
    if (!mapping_) {
      mapping_ = link_.dom0.DmaMap(b_.dom0_buffer, ev.dma_offset, ev.dma_bytes, dir,
                                   fx_.dma_mask_bits(), Mixed());
      ev.maintenance.push_back({MaintenancePhase::kBeforeDevice, mapping_->maintenance()});
    } else {
      ev.maintenance.push_back({MaintenancePhase::kBeforeDevice,
                                link_.dom0.DmaSync(mapping_->mapping(), v1::SYNC_FOR_DEVICE)});
    }
    ev.segments.assign(mapping_->segments().begin(), mapping_->segments().end());
    if (device_writes) {
      // Prime: the CPU loads every line while the device owns the buffer, as speculative
      // prefetch may; only the invalidate for the CPU can drop them.
      link_.dom0.Prime(b_.dom0_buffer, off_, len_, v1::PRIME_READ);
    }
    // Windows: exactly the segments; read-only where the engine may not write
    // (DeviceMayWrite, docs/architecture.md §12): a wrong or unreachable bus address from
    // the kernel under test is read, never written, and the oracle diagnoses it from the
    // mapping audit.
    std::vector<BusWindow> windows;
    for (const v1::DmaSegment& s : ev.segments) {
      BusWindow w{s.dma_addr(), s.length(), BusWindow::Kind::kBuffer,
                  fmt::format("pfn {:#x}", s.pfn())};
      w.writable = DeviceMayWrite(board_, ev.dma_mask_bits, s);
      windows.push_back(std::move(w));
    }
    link_.device.guard().Set(windows);
    try {
      if (device_reads)
        for (const v1::DmaSegment& s : ev.segments) DeviceCheck(s, read_gen, &ev);
      ev.device_read_findings = ev.findings.size();
      if (device_writes)
        for (size_t i = 0; i < ev.segments.size(); ++i)
          if (windows[i].writable) DeviceFill(ev.segments[i], write_gen);
    } catch (...) {
      link_.device.guard().Clear();
      Unmap();
      throw;
    }
    link_.device.guard().Clear();
    if (fx_.reuse_mapping()) {
      ev.maintenance.push_back({MaintenancePhase::kAfterDevice,
                                link_.dom0.DmaSync(mapping_->mapping(), v1::SYNC_FOR_CPU)});
    } else {
      ev.maintenance.push_back({MaintenancePhase::kAfterDevice, Unmap()});
    }

    if (device_writes) {
      const size_t first = ev.findings.size();
      // Whole lines with the pattern checker; with partial lines, the two edge lines byte
      // by byte: the CPU's part must still hold what it held, the device's part the new data.
      const uint64_t edge = partial != 0 ? line_ : 0;
      if (len_ > 2 * edge) {
        const v1::CheckSummary sum =
            b_.owner->Verify(b_.owner_buffer, off_ + edge, len_ - 2 * edge,
                             Pattern(seed_, id_, write_gen, off_ + edge, line_), max_findings);
        ev.lines_checked += sum.lines_checked();
        ev.findings.insert(ev.findings.end(), sum.mismatches().begin(), sum.mismatches().end());
      }
      if (partial != 0) {
        const uint32_t cpu_gen = device_reads ? read_gen : old_gen;
        CpuCheckEdge(off_, ev.dma_offset, off_ + line_, cpu_gen, write_gen, &ev);
        CpuCheckEdge(off_ + len_ - line_, off_ + len_ - line_, ev.dma_offset + ev.dma_bytes,
                     cpu_gen, write_gen, &ev);
      }
      MarkBusErrors(&ev, first);
    }
    for (const auto& [at, bytes] : Canaries()) {
      const v1::CheckSummary c =
          b_.owner->Verify(b_.owner_buffer, at, bytes, Pattern(seed_, id_ + 1, 1, at, line_), 1);
      ev.canary_mismatches += c.mismatches_total();
    }
    return ev;
  }

  /// dma_unmap of the current mapping, if any; the maintenance it issued.
  v1::Maintenance Unmap() {
    if (!mapping_) return {};
    const uint32_t m = mapping_->mapping();
    mapping_.reset();
    return link_.dom0.DmaUnmap(m);
  }

 private:
  /// Splits [a, b) at line boundaries: a partial head, whole lines, a partial tail.
  struct Pieces {
    uint64_t head_end, tail_start;
  };
  Pieces Split(uint64_t a, uint64_t b) const {
    const uint64_t up = (a + line_ - 1) / line_ * line_;
    const uint64_t head_end = std::min(b, up);
    return {head_end, std::max(head_end, b / line_ * line_)};
  }

  /// Bytes [from, to) of line `line` of generation gen (from, to: offsets in the buffer).
  std::string LineBytes(uint32_t gen, uint64_t line, uint64_t from, uint64_t to) const {
    std::string full(line_, '\0');
    pattern::FillLine(pattern::Spec{seed_, id_ & 0xFFFF, gen & 0xFFFF, 0, line_},
                      static_cast<uint32_t>(line), reinterpret_cast<uint8_t*>(full.data()));
    return full.substr(from - line * line_, to - from);
  }

  /// A finding for a partial line whose bytes `got` should have been `want`; `before`
  /// is what the bytes held before the transfer.
  static std::optional<v1::LineFinding> PartialFinding(uint64_t line, const std::string& got,
                                                       const std::string& want,
                                                       const std::string& before) {
    if (got == want) return std::nullopt;
    v1::LineFinding f;
    f.set_line(static_cast<uint32_t>(line));
    if (got == before) {
      f.set_cls(v1::LINE_STALE);
    } else if (got.find_first_not_of('\0') == std::string::npos) {
      f.set_cls(v1::LINE_ZERO);
    } else {
      f.set_cls(v1::LINE_CORRUPT);
    }
    return f;
  }

  void DeviceCheck(const v1::DmaSegment& s, uint32_t gen, Evidence* ev) {
    const uint64_t a = s.offset();
    const uint64_t b = a + s.length();
    const Pieces p = Split(a, b);
    auto bus = [&](uint64_t off) { return s.dma_addr() + (off - a); };
    for (const auto& [from, to] : {std::pair{a, p.head_end}, std::pair{p.tail_start, b}}) {
      if (from == to || (from % line_ == 0 && to % line_ == 0)) continue;
      const uint64_t line = from / line_;
      const v1::DeviceResponse r = link_.device.Read(bus(from), static_cast<uint32_t>(to - from));
      ++ev->lines_checked;
      if (r.status() == v1::DEVICE_BUS_ERROR) {
        v1::LineFinding f;
        f.set_line(static_cast<uint32_t>(line));
        f.set_cls(v1::LINE_BUS_ERROR);
        ev->findings.push_back(f);
        continue;
      }
      if (r.status() != v1::DEVICE_OK)
        throw DeviceError(fmt::format("device read at {:#x}: {}", bus(from), r.message()));
      if (auto f = PartialFinding(line, r.data(), LineBytes(gen, line, from, to),
                                  LineBytes(gen - 1, line, from, to)))
        ev->findings.push_back(*f);
    }
    const uint64_t mid = a % line_ == 0 ? a : p.head_end;
    if (p.tail_start <= mid) return;
    // Every line of the segment may be a finding (a segment is at most a few pages).
    const v1::DeviceResponse r = link_.device.Check(
        bus(mid), static_cast<uint32_t>(p.tail_start - mid), Pattern(seed_, id_, gen, mid, line_),
        static_cast<uint32_t>((p.tail_start - mid) / line_));
    if (r.status() != v1::DEVICE_OK)
      throw DeviceError(fmt::format("device check at {:#x}: {}", bus(mid), r.message()));
    ev->lines_checked += r.check().lines_checked();
    ev->findings.insert(ev->findings.end(), r.check().mismatches().begin(),
                        r.check().mismatches().end());
  }

  void DeviceFill(const v1::DmaSegment& s, uint32_t gen) {
    const uint64_t a = s.offset();
    const uint64_t b = a + s.length();
    const Pieces p = Split(a, b);
    auto bus = [&](uint64_t off) { return s.dma_addr() + (off - a); };
    auto bus_error = [&](uint64_t from_off, uint64_t to_off) {
      bus_error_lines_.emplace_back(from_off / line_, (to_off + line_ - 1) / line_);
    };
    for (const auto& [from, to] : {std::pair{a, p.head_end}, std::pair{p.tail_start, b}}) {
      if (from == to || (from % line_ == 0 && to % line_ == 0)) continue;
      const v1::DeviceResponse r =
          link_.device.Write(bus(from), LineBytes(gen, from / line_, from, to));
      if (r.status() == v1::DEVICE_BUS_ERROR) {
        bus_error(from, to);
      } else if (r.status() != v1::DEVICE_OK) {
        throw DeviceError(fmt::format("device write at {:#x}: {}", bus(from), r.message()));
      }
    }
    const uint64_t mid = a % line_ == 0 ? a : p.head_end;
    if (p.tail_start <= mid) return;
    const v1::DeviceResponse r = link_.device.Fill(
        bus(mid), static_cast<uint32_t>(p.tail_start - mid), Pattern(seed_, id_, gen, mid, line_));
    if (r.status() == v1::DEVICE_BUS_ERROR) {
      // The engine stopped at fault_addr: the lines from there to the end of the segment
      // never left it. The CPU check will find them; they are classed as bus errors.
      bus_error(mid + (r.fault_addr() - bus(mid)) / line_ * line_, p.tail_start);
    } else if (r.status() != v1::DEVICE_OK) {
      throw DeviceError(fmt::format("device fill at {:#x}: {}", bus(mid), r.message()));
    }
  }

  /// CPU check of one edge line [line_start, line_start + line) whose bytes [dma_from,
  /// dma_to) came from the device (write_gen) and the rest belong to the CPU (cpu_gen).
  void CpuCheckEdge(uint64_t line_start, uint64_t dma_from, uint64_t dma_to, uint32_t cpu_gen,
                    uint32_t write_gen, Evidence* ev) {
    const uint64_t line = line_start / line_;
    const std::string got = b_.owner->ReadBytes(b_.owner_buffer, line_start, line_);
    ++ev->lines_checked;
    std::string want = LineBytes(cpu_gen, line, line_start, line_start + line_);
    want.replace(dma_from - line_start, dma_to - dma_from,
                 LineBytes(write_gen, line, dma_from, dma_to));
    if (got == want) return;
    v1::LineFinding f;
    f.set_line(static_cast<uint32_t>(line));
    const auto cpu_part_ok = [&](uint64_t from, uint64_t to) {
      return got.compare(from - line_start, to - from, want, from - line_start, to - from) == 0;
    };
    if (!cpu_part_ok(line_start, dma_from) || !cpu_part_ok(dma_to, line_start + line_)) {
      f.set_cls(v1::LINE_TORN);  // the CPU's own bytes in the shared line were destroyed
    } else if (got.substr(dma_from - line_start, dma_to - dma_from) ==
               LineBytes(cpu_gen, line, dma_from, dma_to)) {
      f.set_cls(v1::LINE_STALE);
    } else {
      f.set_cls(v1::LINE_CORRUPT);
    }
    ev->findings.push_back(f);
  }

  /// Reclassifies the CPU's findings (from index `first`) on lines the engine could not
  /// write as bus errors.
  void MarkBusErrors(Evidence* ev, size_t first) const {
    for (size_t i = first; i < ev->findings.size(); ++i)
      for (const auto& [from, to] : bus_error_lines_)
        if (ev->findings[i].line() >= from && ev->findings[i].line() < to)
          ev->findings[i].set_cls(v1::LINE_BUS_ERROR);
  }

  BoardLink& link_;
  const v1::Board& board_;
  const v1::Fixture& fx_;
  uint64_t seed_;
  uint32_t id_;
  uint32_t line_;
  uint64_t total_bytes_;
  uint64_t off_;
  uint64_t len_;
  Buffers b_;
  std::optional<v1::DmaMapping> mapping_;                       // live between map and unmap
  std::vector<std::pair<uint64_t, uint64_t>> bus_error_lines_;  // [from, to) line indices
};

}  // namespace

v1::FixtureResult IterateFixture(const std::string& board_name, const v1::Fixture& fixture,
                                 const std::function<v1::FixtureResult(uint32_t)>& iterate,
                                 uint64_t* mismatching, uint64_t* checked) {
  v1::FixtureResult one;
  one.set_board(board_name);
  one.set_fixture(fixture.name());
  for (uint32_t it = 1; it <= fixture.iterations(); ++it) {
    one = iterate(it);
    *mismatching += one.mismatching_lines();
    *checked += one.lines_checked();
    one.set_board(board_name);
    one.set_fixture(fixture.name());
    one.set_iterations(it);
    if (one.verdict() != v1::VERDICT_PASS) {
      one.set_failed_iteration(it);
      break;
    }
  }
  return one;
}

void ErrorResult(const std::exception& error, const std::function<void()>& release,
                 v1::FixtureResult* result) {
  result->set_verdict(v1::VERDICT_ERROR);
  result->set_diagnosis(v1::DIAGNOSIS_NONE);
  result->set_detail(error.what());
  try {
    release();
  } catch (const std::exception& e) {
    spdlog::warn("{} / {}: release after error failed: {}", result->board(), result->fixture(),
                 e.what());
  }
}

v1::FixtureResult RunFixture(BoardLink& link, const v1::Board& board, const std::string& board_name,
                             const v1::Fixture& fixture, uint64_t seed, uint32_t buffer_id) {
  v1::FixtureResult result;
  result.set_board(board_name);
  result.set_fixture(fixture.name());
  if (std::string why = NotApplicableReason(board, fixture, link.line_size); !why.empty()) {
    result.set_verdict(v1::VERDICT_NOT_APPLICABLE);
    result.set_detail(std::move(why));
    return result;
  }
  Run run(link, board, fixture, seed, buffer_id);
  uint64_t mismatching = 0;
  uint64_t checked = 0;
  try {
    run.Allocate();
    result = IterateFixture(
        board_name, fixture,
        [&](uint32_t it) {
          v1::FixtureResult one;
          Diagnose(board, run.Iterate(it), &one);
          return one;
        },
        &mismatching, &checked);
    run.Release();
  } catch (const std::exception& e) {
    ErrorResult(
        e, [&] { run.Release(); }, &result);
  }
  result.set_mismatching_lines(mismatching);
  result.set_lines_checked(checked);
  return result;
}

}  // namespace dmahil::controller
