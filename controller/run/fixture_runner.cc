#include "controller/run/fixture_runner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "controller/device/device_client.h"
#include "controller/run/oracle.h"

namespace dmahil::controller {
namespace {

constexpr uint64_t kPage = 4096;

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
  bool dom0_mapped = false;  // dom0_buffer differs from owner_buffer (foreign grant map)
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
        canary_bytes_(fx.canary_pages() * kPage),
        off_(canary_bytes_),
        len_(fx.pages() * kPage) {}

  void Allocate() {
    const uint32_t total = fx_.pages() + 2 * fx_.canary_pages();
    if (fx_.source() == v1::BUFFER_FOREIGN_GRANT) {
      const uint32_t grants = fx_.double_map() ? 2 : 1;
      const v1::AllocGrantsResponse g = link_.guest.AllocGrants(total, 0, fx_.placement(), grants);
      b_.owner = &link_.guest;
      b_.owner_buffer = g.buffer();
      const uint32_t domid = link_.guest.GetInfo().domid();
      google::protobuf::RepeatedField<uint32_t> first(g.grefs().begin(), g.grefs().begin() + total);
      const v1::BufferInfo d = link_.dom0.MapForeign(domid, first);
      b_.dom0_buffer = d.buffer();
      b_.dom0_mapped = true;
      if (fx_.double_map()) {
        // The same frames again at other pfns; the first copy goes before the DMA.
        google::protobuf::RepeatedField<uint32_t> second(g.grefs().begin() + total,
                                                         g.grefs().end());
        const v1::BufferInfo d2 = link_.dom0.MapForeign(domid, second);
        link_.dom0.ReleaseBuffer(b_.dom0_buffer);
        b_.dom0_buffer = d2.buffer();
      }
    } else {
      const v1::BufferInfo d = link_.dom0.AllocLocal(total, fx_.placement());
      b_.owner = &link_.dom0;
      b_.owner_buffer = b_.dom0_buffer = d.buffer();
    }
    if (canary_bytes_ > 0) {
      for (uint64_t at : {uint64_t{0}, off_ + len_}) {
        b_.owner->Fill(b_.owner_buffer, at, canary_bytes_, Pattern(seed_, id_ + 1, 1, at, line_));
        b_.owner->Prime(b_.owner_buffer, at, canary_bytes_, v1::PRIME_CLEAN_INVALIDATE);
      }
    }
  }

  void Release() {
    if (b_.dom0_mapped) link_.dom0.ReleaseBuffer(b_.dom0_buffer);
    if (b_.owner != nullptr) b_.owner->ReleaseBuffer(b_.owner_buffer);
    b_ = Buffers{};
  }

  /// One DMA transaction; returns its evidence.
  Evidence Iterate(uint32_t iteration) {
    const uint32_t old_gen = 2 * iteration - 1;
    const uint32_t new_gen = 2 * iteration;
    Evidence ev;
    ev.direction = fx_.direction();
    ev.line_size = line_;
    ev.dma_mask_bits = fx_.dma_mask_bits() != 0 ? fx_.dma_mask_bits() : board_.dma().mask_bits();
    ev.buffer_offset = off_;
    ev.buffer_bytes = len_;
    const uint32_t max_findings = static_cast<uint32_t>(len_ / line_);
    bus_error_lines_.clear();

    // Old generation in memory, nothing cached.
    b_.owner->Fill(b_.owner_buffer, off_, len_, Pattern(seed_, id_, old_gen, off_, line_));
    b_.owner->Prime(b_.owner_buffer, off_, len_, v1::PRIME_CLEAN_INVALIDATE);
    if (fx_.direction() == v1::DMA_TO_DEVICE) {
      // Prime: the new data sits in dirty lines; only the map's clean gets it to memory.
      b_.owner->Fill(b_.owner_buffer, off_, len_, Pattern(seed_, id_, new_gen, off_, line_));
    }
    const v1::DmaMapping m =
        link_.dom0.DmaMap(b_.dom0_buffer, off_, len_, fx_.direction(), fx_.dma_mask_bits());
    ev.segments.assign(m.segments().begin(), m.segments().end());
    if (fx_.direction() == v1::DMA_FROM_DEVICE) {
      // Prime: the CPU loads every line while the device owns the buffer, as speculative
      // prefetch may; only the unmap's invalidate can drop them.
      link_.dom0.Prime(b_.dom0_buffer, off_, len_, v1::PRIME_READ);
    }
    std::vector<BusWindow> windows;
    for (const v1::DmaSegment& s : ev.segments)
      windows.push_back(BusWindow{s.dma_addr(), s.length(), BusWindow::Kind::kBuffer,
                                  fmt::format("pfn {:#x}", s.pfn())});
    link_.device.guard().Set(windows);
    try {
      for (const v1::DmaSegment& s : ev.segments) DeviceOp(s, new_gen, max_findings, &ev);
    } catch (...) {
      link_.device.guard().Clear();
      link_.dom0.DmaUnmap(m.mapping());
      throw;
    }
    link_.device.guard().Clear();
    link_.dom0.DmaUnmap(m.mapping());

    if (fx_.direction() == v1::DMA_FROM_DEVICE) {
      const v1::CheckSummary sum = b_.owner->Verify(
          b_.owner_buffer, off_, len_, Pattern(seed_, id_, new_gen, off_, line_), max_findings);
      ev.lines_checked = sum.lines_checked();
      ev.findings.assign(sum.mismatches().begin(), sum.mismatches().end());
      MarkBusErrors(&ev);
    }
    if (canary_bytes_ > 0) {
      for (uint64_t at : {uint64_t{0}, off_ + len_}) {
        const v1::CheckSummary c = b_.owner->Verify(b_.owner_buffer, at, canary_bytes_,
                                                    Pattern(seed_, id_ + 1, 1, at, line_), 1);
        ev.canary_mismatches += c.mismatches_total();
      }
    }
    return ev;
  }

 private:
  void DeviceOp(const v1::DmaSegment& s, uint32_t new_gen, uint32_t max_findings, Evidence* ev) {
    const v1::PatternSpec p = Pattern(seed_, id_, new_gen, s.offset(), line_);
    const uint32_t seg_lines = s.length() / line_;
    if (fx_.direction() == v1::DMA_TO_DEVICE) {
      const v1::DeviceResponse r = link_.device.Check(s.dma_addr(), s.length(), p, max_findings);
      if (r.status() != v1::DEVICE_OK)
        throw DeviceError(fmt::format("device check at {:#x}: {}", s.dma_addr(), r.message()));
      ev->lines_checked += r.check().lines_checked();
      ev->findings.insert(ev->findings.end(), r.check().mismatches().begin(),
                          r.check().mismatches().end());
      return;
    }
    const v1::DeviceResponse r = link_.device.Fill(s.dma_addr(), s.length(), p);
    if (r.status() == v1::DEVICE_BUS_ERROR) {
      // The engine stopped at fault_addr: the lines from there to the end of the segment
      // never left it. The CPU check will find them; they are classed as bus errors.
      const uint64_t from = s.offset() / line_ + (r.fault_addr() - s.dma_addr()) / line_;
      bus_error_lines_.emplace_back(from, s.offset() / line_ + seg_lines);
    } else if (r.status() != v1::DEVICE_OK) {
      throw DeviceError(fmt::format("device fill at {:#x}: {}", s.dma_addr(), r.message()));
    }
  }

  /// Reclassifies CPU findings on lines the engine could not write as bus errors.
  void MarkBusErrors(Evidence* ev) const {
    for (v1::LineFinding& f : ev->findings)
      for (const auto& [from, to] : bus_error_lines_)
        if (f.line() >= from && f.line() < to) f.set_cls(v1::LINE_BUS_ERROR);
  }

  BoardLink& link_;
  const v1::Board& board_;
  const v1::Fixture& fx_;
  uint64_t seed_;
  uint32_t id_;
  uint32_t line_;
  uint64_t canary_bytes_;
  uint64_t off_;
  uint64_t len_;
  Buffers b_;
  std::vector<std::pair<uint64_t, uint64_t>> bus_error_lines_;  // [from, to) line indices
};

}  // namespace

v1::FixtureResult RunFixture(BoardLink& link, const v1::Board& board, const std::string& board_name,
                             const v1::Fixture& fixture, uint64_t seed, uint32_t buffer_id) {
  v1::FixtureResult result;
  result.set_board(board_name);
  result.set_fixture(fixture.name());
  if (fixture.direction() == v1::DMA_BIDIRECTIONAL) {
    result.set_verdict(v1::VERDICT_ERROR);
    result.set_detail("DMA_BIDIRECTIONAL fixtures are not supported by this controller yet");
    return result;
  }
  Run run(link, board, fixture, seed, buffer_id);
  uint64_t mismatching = 0;
  uint64_t checked = 0;
  try {
    run.Allocate();
    for (uint32_t it = 1; it <= fixture.iterations(); ++it) {
      v1::FixtureResult one;
      Diagnose(board, run.Iterate(it), &one);
      mismatching += one.mismatching_lines();
      checked += one.lines_checked();
      one.set_board(board_name);
      one.set_fixture(fixture.name());
      one.set_iterations(it);
      if (one.verdict() != v1::VERDICT_PASS || it == fixture.iterations()) {
        if (one.verdict() != v1::VERDICT_PASS) one.set_failed_iteration(it);
        result = std::move(one);
        break;
      }
    }
    run.Release();
  } catch (const std::exception& e) {
    result.set_verdict(v1::VERDICT_ERROR);
    result.set_diagnosis(v1::DIAGNOSIS_NONE);
    result.set_detail(e.what());
    try {
      run.Release();
    } catch (const std::exception& e2) {
      spdlog::warn("{} / {}: release after error failed: {}", board_name, fixture.name(),
                   e2.what());
    }
  }
  result.set_mismatching_lines(mismatching);
  result.set_lines_checked(checked);
  return result;
}

}  // namespace dmahil::controller
