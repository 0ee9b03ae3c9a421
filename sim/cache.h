// The CPU data cache of the virtual board, up to the point of coherency (DESIGN §6).
//
// Physically indexed and tagged, write-back, write-allocate, set-associative with the
// board file's geometry; a random victim on a miss, and at arbitrary moments (chance
// eviction_ppm per access) a random line is evicted, dirty lines written back. This is
// what makes a missing clean or invalidate visible, and only probabilistically.
// Maintenance follows the Arm DC ops Linux uses (arch/arm64/mm/cache.S):
//   Clean       = DC CVAC  over the lines overlapping the range (dcache_clean_poc)
//   Invalidate  = dcache_inval_poc: partial lines at either edge are cleaned and
//                 invalidated (DC CIVAC) so the CPU's neighbouring data survives, whole
//                 lines are invalidated (DC IVAC)
//   CleanInvalidate = DC CIVAC over the range (dcache_clean_inval_poc)
#pragma once

#include <cstdint>
#include <vector>

#include "dmahil/v1/board.pb.h"
#include "sim/memory.h"
#include "sim/rng.h"

namespace dmahil::sim {

class Cache {
 public:
  /// geometry: validated board geometry (power-of-two line size and sets, ways >= 1).
  /// memory: backing machine memory; must outlive the cache.
  Cache(const v1::CacheGeometry& geometry, MachineMemory& memory, uint64_t seed);

  uint32_t line_size() const { return line_size_; }

  /// CPU load / store at a machine address (through the cache). Throws
  /// SimError(kOutOfRange) if the range is not RAM; nothing is changed then.
  void Read(uint64_t addr, uint8_t* dst, uint64_t len);
  void Write(uint64_t addr, const uint8_t* src, uint64_t len);

  /// Maintenance by machine address range (see the file comment). Addresses outside
  /// RAM are ignored, as DC ops on non-cached addresses are.
  void Clean(uint64_t addr, uint64_t len);
  void Invalidate(uint64_t addr, uint64_t len);
  void CleanInvalidate(uint64_t addr, uint64_t len);

  /// Coherent-device hooks: a snooping device read sees dirty lines; a snooping write
  /// updates lines already present (no allocation).
  void SnoopRead(uint64_t addr, uint8_t* dst, uint64_t len) const;
  void SnoopWrite(uint64_t addr, const uint8_t* src, uint64_t len);

  /// Number of valid / dirty lines (for tests and statistics).
  uint64_t valid_lines() const;
  uint64_t dirty_lines() const;
  /// True if the line holding machine address addr is cached (for tests).
  bool IsCached(uint64_t addr) const;

 private:
  struct Line {
    uint64_t tag = 0;  // line-aligned machine address
    bool valid = false;
    bool dirty = false;
  };
  uint64_t SetOf(uint64_t line_addr) const { return (line_addr / line_size_) & (sets_ - 1); }
  uint8_t* DataOf(uint64_t slot) { return data_.data() + slot * line_size_; }
  const uint8_t* DataOf(uint64_t slot) const { return data_.data() + slot * line_size_; }
  int64_t Find(uint64_t line_addr) const;  // slot or -1
  uint64_t Allocate(uint64_t line_addr);   // slot holding the line (filled from memory)
  uint64_t Lookup(uint64_t line_addr);     // Find, else Allocate
  void WriteBack(uint64_t slot);
  void Evict(uint64_t slot);
  void MaybeRandomEviction();

  uint32_t line_size_;
  uint32_t sets_;
  uint32_t ways_;
  uint32_t eviction_ppm_;
  MachineMemory& memory_;
  Rng rng_;
  std::vector<Line> lines_;    // sets_ * ways_
  std::vector<uint8_t> data_;  // sets_ * ways_ * line_size_
};

}  // namespace dmahil::sim
