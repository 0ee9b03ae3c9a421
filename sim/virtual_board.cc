#include "sim/virtual_board.h"

#include <algorithm>
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

uint64_t VirtualBoard::ToMachine(uint32_t domid, uint64_t gpa) const {
  const std::optional<uint64_t> mfn = xen_.P2m(domid, gpa >> kXenPageShift);
  if (!mfn)
    throw SimError(ErrorCode::kOutOfRange,
                   fmt::format("dom{}: gfn {:#x} is not mapped", domid, gpa >> kXenPageShift));
  return (*mfn << kXenPageShift) | (gpa & (kXenPageSize - 1));
}

void VirtualBoard::CpuRead(uint32_t domid, uint64_t gpa, uint8_t* dst, uint64_t len) {
  ForEachChunk(gpa, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    cache_.Read(ToMachine(domid, at), dst + done, n, CpuOf(domid));
  });
}

void VirtualBoard::CpuWrite(uint32_t domid, uint64_t gpa, const uint8_t* src, uint64_t len) {
  ForEachChunk(gpa, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    cache_.Write(ToMachine(domid, at), src + done, n, CpuOf(domid));
  });
}

void VirtualBoard::CpuCleanInvalidate(uint32_t domid, uint64_t gpa, uint64_t len) {
  ForEachChunk(gpa, len, kXenPageSize, [&](uint64_t at, uint64_t, uint64_t n) {
    cache_.CleanInvalidate(ToMachine(domid, at), n);
  });
}

}  // namespace dmahil::sim
