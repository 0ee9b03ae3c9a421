// Machine RAM of the virtual board (DESIGN §6): banks from the board file, stored
// sparsely in 4 KiB Xen frames that read as zero until first written.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "dmahil/v1/board.pb.h"

namespace dmahil::sim {

inline constexpr uint64_t kXenPageSize = 4096;
inline constexpr unsigned kXenPageShift = 12;

/// Machine memory: what the device and the point of coherency see.
class MachineMemory {
 public:
  /// banks: machine address ranges (4 KiB aligned, validated by the board loader).
  explicit MachineMemory(const std::vector<v1::MemoryBank>& banks);
  MachineMemory(const MachineMemory&) = delete;  // FindFrame's memo points into frames_
  MachineMemory& operator=(const MachineMemory&) = delete;

  /// True if [addr, addr + len) lies entirely inside one RAM bank.
  bool Contains(uint64_t addr, uint64_t len) const {
    for (const Bank& b : banks_)
      if (addr >= b.base && len <= b.size && addr - b.base <= b.size - len) return true;
    return false;
  }

  /// Copies len bytes at machine address addr. Throws SimError(kOutOfRange) outside RAM.
  void Read(uint64_t addr, uint8_t* dst, uint64_t len) const;
  /// Writes len bytes at machine address addr. Throws SimError(kOutOfRange) outside RAM.
  void Write(uint64_t addr, const uint8_t* src, uint64_t len);

 private:
  using Frame = std::array<uint8_t, kXenPageSize>;
  struct Bank {
    uint64_t base;
    uint64_t size;
  };
  void CheckRange(uint64_t addr, uint64_t len) const;
  // The frame of mfn, or nullptr if it was never written. Frames are never freed and
  // never move, so the last one found is remembered (accesses come line by line).
  const Frame* FindFrame(uint64_t mfn) const {
    if (mfn == last_mfn_) return last_frame_;
    auto it = frames_.find(mfn);
    if (it == frames_.end()) return nullptr;
    last_mfn_ = mfn;
    last_frame_ = it->second.get();
    return last_frame_;
  }
  Frame& FrameForWrite(uint64_t mfn);

  std::vector<Bank> banks_;
  std::unordered_map<uint64_t, std::unique_ptr<Frame>> frames_;  // by mfn
  mutable uint64_t last_mfn_ = ~uint64_t{0};                     // FindFrame's memo
  mutable Frame* last_frame_ = nullptr;
};

}  // namespace dmahil::sim
