#include "sim/memory.h"

#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include <fmt/format.h>

#include "sim/chunks.h"
#include "sim/error.h"

namespace dmahil::sim {

MachineMemory::MachineMemory(const std::vector<v1::MemoryBank>& banks) {
  banks_.reserve(banks.size());
  for (const v1::MemoryBank& b : banks) {
    const uint64_t frames = (b.size() + kXenPageSize - 1) >> kXenPageShift;
    banks_.push_back({b.base(), b.size(), {}});
    banks_.back().tables.resize((frames + (uint64_t{1} << kTableShift) - 1) >> kTableShift);
  }
}

size_t MachineMemory::CheckRange(uint64_t addr, uint64_t len) const {
  const size_t bank = BankOf(addr, len);
  if (bank == kNoBank)
    throw SimError(ErrorCode::kOutOfRange,
                   fmt::format("machine range {:#x}+{:#x} is not RAM", addr, len));
  return bank;
}

const uint8_t* MachineMemory::FrameData(const Bank& bank, uint64_t addr) const {
  const uint64_t frame = (addr - bank.base) >> kXenPageShift;
  const Table* table = bank.tables[frame >> kTableShift].get();
  if (table == nullptr) return nullptr;
  const Frame* f = (*table)[frame & ((uint64_t{1} << kTableShift) - 1)].get();
  return f == nullptr ? nullptr : f->data() + (addr & (kXenPageSize - 1));
}

uint8_t* MachineMemory::FrameDataForWrite(Bank& bank, uint64_t addr) {
  const uint64_t frame = (addr - bank.base) >> kXenPageShift;
  std::unique_ptr<Table>& table = bank.tables[frame >> kTableShift];
  if (!table) table = std::make_unique<Table>();
  std::unique_ptr<Frame>& f = (*table)[frame & ((uint64_t{1} << kTableShift) - 1)];
  if (!f) f = std::make_unique<Frame>(Frame{});
  return f->data() + (addr & (kXenPageSize - 1));
}

void MachineMemory::Read(uint64_t addr, uint8_t* dst, uint64_t len) const {
  const Bank& bank = banks_[CheckRange(addr, len)];
  ForEachChunk(addr, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    const uint8_t* from = FrameData(bank, at);
    if (from == nullptr) {
      std::memset(dst + done, 0, n);
    } else {
      CopyBytes(dst + done, from, n);
    }
  });
}

void MachineMemory::Write(uint64_t addr, const uint8_t* src, uint64_t len) {
  Bank& bank = banks_[CheckRange(addr, len)];
  ForEachChunk(addr, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    CopyBytes(FrameDataForWrite(bank, at), src + done, n);
  });
}

void MachineMemory::WriteBack(uint64_t addr, const uint8_t* src, uint64_t len) {
#if defined(__x86_64__)
  if (len == 64 && (addr & 63) == 0) {
    auto* dst = reinterpret_cast<__m128i*>(FrameDataForWrite(banks_[CheckRange(addr, len)], addr));
    if (reinterpret_cast<uintptr_t>(dst) % 16 == 0) {
      const auto* from = reinterpret_cast<const __m128i*>(src);
      for (int i = 0; i < 4; ++i) _mm_stream_si128(dst + i, _mm_loadu_si128(from + i));
      streamed_ = true;
      return;
    }
  }
#endif
  Write(addr, src, len);
}

void MachineMemory::FenceStreams() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
  streamed_ = false;
}

}  // namespace dmahil::sim
