#include "sim/memory.h"

#include <cstring>

#include <fmt/format.h>

#include "sim/chunks.h"
#include "sim/error.h"

namespace dmahil::sim {

MachineMemory::MachineMemory(const std::vector<v1::MemoryBank>& banks) {
  banks_.reserve(banks.size());
  for (const v1::MemoryBank& b : banks) banks_.push_back({b.base(), b.size()});
}

void MachineMemory::CheckRange(uint64_t addr, uint64_t len) const {
  if (!Contains(addr, len))
    throw SimError(ErrorCode::kOutOfRange,
                   fmt::format("machine range {:#x}+{:#x} is not RAM", addr, len));
}

MachineMemory::Frame& MachineMemory::FrameForWrite(uint64_t mfn) {
  if (mfn == last_mfn_) return *last_frame_;
  auto& frame = frames_[mfn];
  if (!frame) frame = std::make_unique<Frame>(Frame{});
  last_mfn_ = mfn;
  last_frame_ = frame.get();
  return *frame;
}

void MachineMemory::Read(uint64_t addr, uint8_t* dst, uint64_t len) const {
  CheckRange(addr, len);
  ForEachChunk(addr, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    const Frame* frame = FindFrame(at >> kXenPageShift);
    if (frame == nullptr) {
      std::memset(dst + done, 0, n);
    } else {
      CopyBytes(dst + done, frame->data() + (at & (kXenPageSize - 1)), n);
    }
  });
}

void MachineMemory::Write(uint64_t addr, const uint8_t* src, uint64_t len) {
  CheckRange(addr, len);
  ForEachChunk(addr, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    CopyBytes(FrameForWrite(at >> kXenPageShift).data() + (at & (kXenPageSize - 1)), src + done, n);
  });
}

}  // namespace dmahil::sim
