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

  /// True if [addr, addr + len) lies entirely inside one RAM bank.
  bool Contains(uint64_t addr, uint64_t len) const;

  /// Copies len bytes at machine address addr. Throws SimError(kOutOfRange) outside RAM.
  void Read(uint64_t addr, uint8_t* dst, uint64_t len) const;
  /// Writes len bytes at machine address addr. Throws SimError(kOutOfRange) outside RAM.
  void Write(uint64_t addr, const uint8_t* src, uint64_t len);

 private:
  using Frame = std::array<uint8_t, kXenPageSize>;
  void CheckRange(uint64_t addr, uint64_t len) const;

  std::vector<v1::MemoryBank> banks_;
  std::unordered_map<uint64_t, std::unique_ptr<Frame>> frames_;  // by mfn
};

}  // namespace dmahil::sim
