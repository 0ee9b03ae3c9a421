#include "sim/virtual_board.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "sim/error.h"

namespace dmahil::sim {

VirtualBoard::VirtualBoard(const v1::Board& board, FaultSet faults, uint64_t seed)
    : board_(board),
      faults_(std::move(faults)),
      memory_(std::vector<v1::MemoryBank>(board_.ram().begin(), board_.ram().end())),
      cache_(board_.cache(), memory_, seed),
      xen_(board_.xen(), cache_),
      dma_(board_, xen_, cache_, faults_),
      device_(board_.dma(), memory_, cache_, [this] { return dma_.mask_bits(); }) {}

uint64_t VirtualBoard::ToMachine(uint32_t domid, uint64_t gpa) const {
  const std::optional<uint64_t> mfn = xen_.P2m(domid, gpa >> kXenPageShift);
  if (!mfn)
    throw SimError(ErrorCode::kOutOfRange,
                   fmt::format("dom{}: gfn {:#x} is not mapped", domid, gpa >> kXenPageShift));
  return (*mfn << kXenPageShift) | (gpa & (kXenPageSize - 1));
}

void VirtualBoard::CpuRead(uint32_t domid, uint64_t gpa, uint8_t* dst, uint64_t len) {
  while (len > 0) {
    const uint64_t n = std::min(len, kXenPageSize - (gpa & (kXenPageSize - 1)));
    cache_.Read(ToMachine(domid, gpa), dst, n);
    gpa += n;
    dst += n;
    len -= n;
  }
}

void VirtualBoard::CpuWrite(uint32_t domid, uint64_t gpa, const uint8_t* src, uint64_t len) {
  while (len > 0) {
    const uint64_t n = std::min(len, kXenPageSize - (gpa & (kXenPageSize - 1)));
    cache_.Write(ToMachine(domid, gpa), src, n);
    gpa += n;
    src += n;
    len -= n;
  }
}

void VirtualBoard::CpuCleanInvalidate(uint32_t domid, uint64_t gpa, uint64_t len) {
  while (len > 0) {
    const uint64_t n = std::min(len, kXenPageSize - (gpa & (kXenPageSize - 1)));
    cache_.CleanInvalidate(ToMachine(domid, gpa), n);
    gpa += n;
    len -= n;
  }
}

}  // namespace dmahil::sim
