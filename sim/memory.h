// Machine RAM of the virtual board (docs/architecture.md §7): banks from the board file, stored
// sparsely in 4 KiB Xen frames that read as zero until first written.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/xen_page.h"
#include "dmahil/v1/board.pb.h"

namespace dmahil::sim {

using dmahil::kXenPageShift;  // common/xen_page.h
using dmahil::kXenPageSize;

/// Machine memory: what the device and the point of coherency see.
class MachineMemory {
 public:
  /// banks: machine address ranges (4 KiB aligned, validated by the board loader).
  explicit MachineMemory(const std::vector<v1::MemoryBank>& banks);

  /// True if [addr, addr + len) lies entirely inside one RAM bank.
  bool Contains(uint64_t addr, uint64_t len) const { return BankOf(addr, len) != kNoBank; }

  /// Copies len bytes at machine address addr. Throws SimError(kOutOfRange) outside RAM.
  void Read(uint64_t addr, uint8_t* dst, uint64_t len) const;
  /// Writes len bytes at machine address addr. Throws SimError(kOutOfRange) outside RAM.
  void Write(uint64_t addr, const uint8_t* src, uint64_t len);

  /// Write for a cache's write-back of a line: the same bytes land in memory, but a whole
  /// 64-byte-aligned 64-byte line is written with non-temporal stores on x86-64 (the
  /// written-back line is rarely read again soon, and a store to a line that is not in
  /// the host's caches would first read it). The writer must call FinishWriteBacks()
  /// before it returns to code that may hand the memory to another thread.
  void WriteBack(uint64_t addr, const uint8_t* src, uint64_t len);
  /// Orders the non-temporal stores of WriteBack before any later store (SFENCE).
  void FinishWriteBacks() {
    if (streamed_) FenceStreams();
  }

 private:
  using Frame = std::array<uint8_t, kXenPageSize>;
  // A bank's frames in a two-level table indexed by frame number within the bank: one
  // directory entry per 2 MiB, each a table of 512 frames, both allocated on first write.
  static constexpr unsigned kTableShift = 9;  // 512 frames per table
  using Table = std::array<std::unique_ptr<Frame>, size_t{1} << kTableShift>;
  struct Bank {
    uint64_t base;
    uint64_t size;
    std::vector<std::unique_ptr<Table>> tables;
  };

  static constexpr size_t kNoBank = ~size_t{0};
  size_t BankOf(uint64_t addr, uint64_t len) const {  // index in banks_, or kNoBank
    for (size_t i = 0; i < banks_.size(); ++i) {
      const Bank& b = banks_[i];
      if (addr >= b.base && len <= b.size && addr - b.base <= b.size - len) return i;
    }
    return kNoBank;
  }
  size_t CheckRange(uint64_t addr, uint64_t len) const;  // BankOf; throws outside RAM
  // The bytes at addr (inside bank) in its frame; nullptr if the frame was never written.
  const uint8_t* FrameData(const Bank& bank, uint64_t addr) const;
  uint8_t* FrameDataForWrite(Bank& bank, uint64_t addr);  // allocates the frame

  void FenceStreams();

  std::vector<Bank> banks_;
  bool streamed_ = false;  // WriteBack used non-temporal stores since the last fence
};

}  // namespace dmahil::sim
