#include "sim/memory.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "sim/chunks.h"
#include "sim/error.h"

namespace dmahil::sim {

MachineMemory::MachineMemory(const std::vector<v1::MemoryBank>& banks) : banks_(banks) {}

bool MachineMemory::Contains(uint64_t addr, uint64_t len) const {
  return std::any_of(banks_.begin(), banks_.end(), [&](const v1::MemoryBank& b) {
    return addr >= b.base() && len <= b.size() && addr - b.base() <= b.size() - len;
  });
}

void MachineMemory::CheckRange(uint64_t addr, uint64_t len) const {
  if (!Contains(addr, len))
    throw SimError(ErrorCode::kOutOfRange,
                   fmt::format("machine range {:#x}+{:#x} is not RAM", addr, len));
}

void MachineMemory::Read(uint64_t addr, uint8_t* dst, uint64_t len) const {
  CheckRange(addr, len);
  ForEachChunk(addr, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    auto it = frames_.find(at >> kXenPageShift);
    if (it == frames_.end()) {
      std::memset(dst + done, 0, n);
    } else {
      std::memcpy(dst + done, it->second->data() + (at & (kXenPageSize - 1)), n);
    }
  });
}

void MachineMemory::Write(uint64_t addr, const uint8_t* src, uint64_t len) {
  CheckRange(addr, len);
  ForEachChunk(addr, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    auto& frame = frames_[at >> kXenPageShift];
    if (!frame) frame = std::make_unique<Frame>(Frame{});
    std::memcpy(frame->data() + (at & (kXenPageSize - 1)), src + done, n);
  });
}

}  // namespace dmahil::sim
