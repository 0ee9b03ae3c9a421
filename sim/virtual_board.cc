#include "sim/virtual_board.h"

#include <algorithm>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "sim/chunks.h"
#include "sim/error.h"

namespace dmahil::sim {

VirtualBoard::VirtualBoard(const v1::Board& board, FaultSet faults, uint64_t seed)
    : board_(board),
      faults_(std::move(faults)),
      memory_(std::vector<v1::MemoryBank>(board_.ram().begin(), board_.ram().end())),
      cache_(board_, memory_, seed),
      xen_(board_.xen(), cache_,
           XenOptions{board_.smmu().present(), faults_.Has(FaultId::kGrantNotInIommu),
                      seed ^ 0x58454e}),
      dma_(board_, xen_, cache_, faults_),
      device_(
          board_.dma(), memory_, cache_, [this] { return dma_.mask_bits(); },
          board_.smmu().present() ? &xen_ : nullptr) {}

unsigned VirtualBoard::CpuOf(uint32_t domid) const {
  return domid == kDom0 ? 0u : 1u % cache_.cpus();  // board.proto: Board.cpus
}

// One cache call per run rather than per 4 KiB frame: the cache acts line by line in
// address order either way, so the result is the same; a run never leaves a RAM bank, so
// a range that is not RAM fails where the frame-by-frame walk did.
template <typename Fn>
void VirtualBoard::ForEachMachineRun(uint32_t domid, uint64_t gpa, uint64_t len, Fn&& fn) const {
  uint64_t run = 0, run_done = 0, run_len = 0;
  ForEachChunk(gpa, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    const std::optional<uint64_t> mfn = xen_.P2m(domid, at >> kXenPageShift);
    const uint64_t machine = mfn ? (*mfn << kXenPageShift) | (at & (kXenPageSize - 1)) : 0;
    if (mfn && run_len != 0 && machine == run + run_len && memory_.Contains(run, run_len + n)) {
      run_len += n;
      return;
    }
    if (run_len != 0) fn(run, run_done, run_len);
    if (!mfn)
      throw SimError(ErrorCode::kOutOfRange,
                     fmt::format("dom{}: gfn {:#x} is not mapped", domid, at >> kXenPageShift));
    run = machine;
    run_done = done;
    run_len = n;
  });
  if (run_len != 0) fn(run, run_done, run_len);
}

void VirtualBoard::CpuRead(uint32_t domid, uint64_t gpa, uint8_t* dst, uint64_t len) {
  ForEachMachineRun(domid, gpa, len, [&](uint64_t machine, uint64_t done, uint64_t n) {
    cache_.Read(machine, dst + done, n, CpuOf(domid));
  });
}

void VirtualBoard::CpuWrite(uint32_t domid, uint64_t gpa, const uint8_t* src, uint64_t len) {
  ForEachMachineRun(domid, gpa, len, [&](uint64_t machine, uint64_t done, uint64_t n) {
    cache_.Write(machine, src + done, n, CpuOf(domid));
  });
}

void VirtualBoard::CpuCleanInvalidate(uint32_t domid, uint64_t gpa, uint64_t len) {
  ForEachMachineRun(domid, gpa, len, [&](uint64_t machine, uint64_t, uint64_t n) {
    cache_.CleanInvalidate(machine, n);
  });
}

}  // namespace dmahil::sim
