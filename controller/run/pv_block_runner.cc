#include "controller/run/pv_block_runner.h"

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/pattern.h"
#include "common/validate.h"
#include "common/xen_page.h"
#include "controller/run/applicability.h"
#include "controller/run/driver_watch.h"
#include "controller/run/oracle.h"
#include "firmware/host/codec.h"

namespace dmahil::controller {
namespace {

pattern::Spec SpecOf(uint64_t seed, uint32_t buffer_id, uint32_t generation, uint64_t offset,
                     uint32_t line_size) {
  return pattern::Spec{seed, buffer_id & 0xFFFF, generation & 0xFFFF,
                       static_cast<uint32_t>(offset / line_size), line_size};
}

class PvBlockRun {
 public:
  PvBlockRun(BoardLink& link, const v1::Fixture& fx, uint64_t seed, uint32_t buffer_id,
             const v1::Board& board)
      : link_(link),
        board_(board),
        fx_(fx),
        seed_(seed),
        id_(buffer_id),
        line_(link.line_size),
        total_bytes_((uint64_t{fx.pages()} + 2 * fx.canary_pages()) * kXenPageSize),
        off_(fx.canary_pages() * kXenPageSize + fx.block().buffer_offset()),
        len_(PvBlockBytes(fx)) {}

  /// Starts watching the test disk's controller through dom0's agent, if the board file
  /// names one (TestDisk.controller).
  void Watch() {
    if (!board_.has_test_disk()) return;
    watch_ = std::make_unique<DriverWatch>(link_.dom0, board_.test_disk().controller());
  }
  /// Why the driver's mappings were not seen ("" if they were).
  std::string NotWatched() const {
    if (!watch_)
      return "the board file names no test_disk controller to watch (docs/lab-block-device.md)";
    return watch_->on() ? "" : watch_->why_not();
  }

  void Allocate() {
    const uint32_t pages = fx_.pages() + 2 * fx_.canary_pages();
    buffer_ = link_.guest.AllocLocal(pages, v1::PLACEMENT_ANY).buffer();
    for (const auto& [at, bytes] : Canaries()) {
      link_.guest.Fill(*buffer_, at, bytes,
                       device_host::SpecToProto(SpecOf(seed_, id_ + 1, 1, at, line_)));
      link_.guest.Prime(*buffer_, at, bytes, v1::PRIME_CLEAN_INVALIDATE);
    }
  }

  void Release() {
    if (!buffer_) return;
    const uint32_t b = *buffer_;
    buffer_.reset();
    link_.guest.ReleaseBuffer(b);
  }

  Evidence Iterate(uint32_t iteration) {
    const v1::DmaDirection dir = fx_.direction();
    const bool write = dir != v1::DMA_FROM_DEVICE;  // the device reads the domU's pages
    const bool read = dir != v1::DMA_TO_DEVICE;     // the device writes them
    const uint32_t old_gen = 3 * iteration - 2;
    const uint32_t write_gen = 3 * iteration - 1;  // what the domU writes to the disk
    const uint32_t read_gen = 3 * iteration;       // what the domU must read back
    Evidence ev;
    ev.direction = dir;
    ev.line_size = line_;
    ev.buffer_id = id_;
    ev.buffer_offset = off_;
    ev.buffer_bytes = len_;
    ev.segments_known = false;
    const uint64_t disk_offset = fx_.block().disk_offset();
    if (watch_ && watch_->on()) {
      DriverEvidence d;
      d.device =
          fmt::format("{} at {}", board_.test_disk().driver(), board_.test_disk().controller());
      d.coherent = board_.test_disk().coherent();
      d.maintenance_audited = true;
      d.dma_direct = watch_->direct();
      ev.driver = std::move(d);
      Drain(nullptr, false, ev);  // whatever came before this iteration
    }

    // Old generation in memory, nothing cached; the new one in dirty lines only.
    link_.guest.Fill(*buffer_, off_, len_,
                     device_host::SpecToProto(SpecOf(seed_, id_, old_gen, off_, line_)));
    link_.guest.Prime(*buffer_, off_, len_, v1::PRIME_CLEAN_INVALIDATE);
    if (write) {
      link_.guest.Fill(*buffer_, off_, len_,
                       device_host::SpecToProto(SpecOf(seed_, id_, write_gen, off_, line_)));
      link_.guest.BlockIo(Request(v1::BLOCK_WRITE));
      Drain(&ev.driver, false, ev);
      // What the device took from memory, as it stored it.
      ev.findings =
          link_.disk->Check(disk_offset, len_, SpecOf(seed_, id_, write_gen, off_, line_));
      ev.lines_checked += len_ / line_;
      ev.device_read_findings = ev.findings.size();
    }
    if (read) {
      // What the device will put into memory; the buffer's lines valid in the domU's
      // cache, as a CPU that touched them before the read would hold them.
      link_.disk->Fill(disk_offset, len_, SpecOf(seed_, id_, read_gen, off_, line_));
      link_.guest.Prime(*buffer_, off_, len_, v1::PRIME_READ);
      Drain(nullptr, false, ev);  // the device side's own I/O, if dom0 did it
      link_.guest.BlockIo(Request(v1::BLOCK_READ));
      Drain(&ev.driver, true, ev);
      const v1::CheckSummary sum = link_.guest.Verify(
          *buffer_, off_, len_, device_host::SpecToProto(SpecOf(seed_, id_, read_gen, off_, line_)),
          static_cast<uint32_t>(len_ / line_));
      ev.lines_checked += sum.lines_checked();
      ev.findings.insert(ev.findings.end(), sum.mismatches().begin(), sum.mismatches().end());
    }
    for (const auto& [at, bytes] : Canaries()) {
      const v1::CheckSummary c = link_.guest.Verify(
          *buffer_, at, bytes, device_host::SpecToProto(SpecOf(seed_, id_ + 1, 1, at, line_)), 1);
      ev.canary_mismatches += c.mismatches_total();
    }
    return ev;
  }

 private:
  /// Takes the watched driver's ops so far into `into` (null: discards them, e.g. the
  /// device side's own I/O), marked as the domU's read or write; a lost record or an
  /// unaudited drain is noted in ev.driver either way.
  void Drain(std::optional<DriverEvidence>* into, bool read_path, Evidence& ev) {
    if (!watch_ || !watch_->on()) return;
    const v1::DeviceOps ops = watch_->Take();
    ev.driver->dropped += ops.dropped();
    if (into == nullptr) return;
    ev.driver->maintenance_audited &= ops.maintenance_audited();
    GroupDriverOps(ops, read_path, &(*into)->mappings);
  }

  v1::BlockIoRequest Request(v1::BlockOp op) const {
    v1::BlockIoRequest r;
    r.set_buffer(*buffer_);
    r.set_offset(off_);
    r.set_length(len_);
    r.set_disk_offset(fx_.block().disk_offset());
    r.set_op(op);
    r.set_segments(fx_.block().segments());
    return r;
  }

  /// The buffer outside the I/O (offset, bytes).
  std::vector<std::pair<uint64_t, uint64_t>> Canaries() const {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    if (off_ > 0) out.emplace_back(0, off_);
    if (off_ + len_ < total_bytes_) out.emplace_back(off_ + len_, total_bytes_ - off_ - len_);
    return out;
  }

  BoardLink& link_;
  const v1::Board& board_;
  std::unique_ptr<DriverWatch> watch_;
  const v1::Fixture& fx_;
  uint64_t seed_;
  uint32_t id_;
  uint32_t line_;
  uint64_t total_bytes_;
  uint64_t off_;
  uint64_t len_;
  std::optional<uint32_t> buffer_;
};

/// Which side of the I/O the wrong lines are on.
v1::IoPath PathOf(const Evidence& ev) {
  const bool write_bad = ev.device_read_findings > 0;
  const bool read_bad = ev.findings.size() > ev.device_read_findings;
  if (write_bad && read_bad) return v1::IO_PATH_WRITE_AND_READ;
  if (write_bad) return v1::IO_PATH_WRITE;
  return read_bad ? v1::IO_PATH_READ : v1::IO_PATH_UNSPECIFIED;
}

/// The start of the detail of a failure the data found on `path`.
std::string PathPrefix(v1::IoPath path) {
  switch (path) {
    case v1::IO_PATH_WRITE_AND_READ:
      return "write and read paths: ";
    case v1::IO_PATH_WRITE:
      return "write path (the device read the domU's pages; the disk holds what it took): ";
    case v1::IO_PATH_READ:
      return "read path (the device wrote the domU's pages from a disk holding the right data): ";
    default:
      return "";
  }
}

}  // namespace

v1::FixtureResult RunPvBlockFixture(BoardLink& link, const v1::Board& board,
                                    const std::string& board_name, const v1::Fixture& fixture,
                                    uint64_t seed, uint32_t buffer_id) {
  v1::FixtureResult result;
  result.set_board(board_name);
  result.set_fixture(fixture.name());
  PvBlockRun run(link, fixture, seed, buffer_id, board);
  std::string driver_seen;  // what the driver audit saw in the last iteration
  uint64_t mismatching = 0;
  uint64_t checked = 0;
  try {
    const v1::AgentInfo guest = link.guest.GetInfo();
    if (std::string why = PvBlockNotApplicableReason(fixture, guest, link.disk != nullptr,
                                                     link.line_size, link.disk_unseen);
        !why.empty()) {
      result.set_verdict(v1::VERDICT_NOT_APPLICABLE);
      result.set_detail(std::move(why));
      return result;
    }
    run.Watch();
    run.Allocate();
    result = IterateFixture(
        board_name, fixture,
        [&](uint32_t it) {
          v1::FixtureResult one;
          const Evidence ev = run.Iterate(it);
          Diagnose(board, ev, &one);
          if (ev.driver) driver_seen = DescribeDriver(*ev.driver);
          // The driver audit names its own path.
          if (one.verdict() == v1::VERDICT_FAIL && one.io_path() == v1::IO_PATH_UNSPECIFIED) {
            one.set_io_path(PathOf(ev));
            one.set_detail(PathPrefix(one.io_path()) + one.detail());
          }
          return one;
        },
        &mismatching, &checked);
    // Whether the device DMA'd blkfront's persistent grant pages or the domU's own buffer.
    const std::string grants =
        guest.block_grants().empty() ? "" : fmt::format(", {}", guest.block_grants());
    if (result.verdict() != v1::VERDICT_PASS && !grants.empty())
      result.set_detail(
          fmt::format("{}; domU {}{}", result.detail(), guest.block_device(), grants));
    if (result.verdict() == v1::VERDICT_PASS) {
      const std::string not_watched = run.NotWatched();
      result.set_detail(
          fmt::format("{}; checked on the disk's device side ({}) and in the domU ({}{}); {}",
                      result.detail(), link.disk->Describe(), guest.block_device(), grants,
                      not_watched.empty()
                          ? driver_seen
                          : "the disk driver's DMA mappings were not observed: " + not_watched));
    }
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
