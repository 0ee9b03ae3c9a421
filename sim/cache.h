// The CPU data caches of the virtual board, up to the point of coherency (docs/architecture.md §7).
//
// One object models the whole hierarchy: an optional private L1 per CPU (board `l1`) in
// front of one shared last level (board `cache`), which is the point of coherency (PoC).
// Every level is physically indexed and tagged, write-back, write-allocate and
// set-associative with its board geometry; a random victim is chosen on a miss. All
// levels must have the same line size (ValidateBoard checks it; the constructor throws).
//
// What makes a missing clean or invalidate visible, and only probabilistically:
//   - Random eviction: per CPU access (per line touched), with chance eviction_ppm of
//     each level, one random slot of that level is evicted (the accessing CPU's L1, then
//     the shared level); a dirty L1 victim is written into the shared level, a dirty
//     shared victim into memory.
//   - Speculative prefetch: per CPU access (per line touched), with chance prefetch_ppm,
//     the core allocates the NEXT line (line address + line size, page crossings
//     included) clean, unasked, if it is RAM and cached nowhere: the L1 prefetcher
//     (l1.prefetch_ppm) fills the accessing CPU's L1 and the shared level, the shared
//     level's prefetcher (cache.prefetch_ppm) fills the shared level only. The data is
//     read from memory at that moment, so a later non-coherent device write makes it
//     stale. The ARMv8 ARM (DDI 0487, "Cache behavior") lets Normal memory be read and
//     allocated speculatively at any time; this is why arm64 invalidates again on unmap
//     (arch/arm64/mm/dma-mapping.c arch_sync_dma_for_cpu -> dcache_inval_poc).
//
// Coherency between CPUs (ARMv8 ARM: the data caches of the CPUs of the inner-shareable
// domain are kept coherent by hardware) follows MESI: an L1 line is Modified (dirty, only
// copy), Exclusive (clean, only L1 copy) or Shared (clean). A store invalidates the other
// L1s' copies; a miss takes the line from another L1 that holds it (cache-to-cache: on a
// read both become Shared and a Modified copy is written into the shared level, a write
// moves the line), else fills through the shared level. The caches are NOT coherent with
// a non-coherent device, which reads and writes memory only.
//
// Maintenance follows the Arm DC ops Linux uses (arch/arm64/mm/cache.S). DC ops to the PoC
// are broadcast in the inner-shareable domain, so every op acts on every level of every
// CPU and a clean writes the newest dirty copy (L1 or shared) all the way to memory:
//   Clean       = DC CVAC  over the lines overlapping the range (dcache_clean_poc)
//   Invalidate  = dcache_inval_poc: partial lines at either edge are cleaned and
//                 invalidated (DC CIVAC) so neighbouring data of any CPU survives, whole
//                 lines are invalidated (DC IVAC: dirty data is discarded everywhere)
//   CleanInvalidate = DC CIVAC over the range (dcache_clean_inval_poc)
//
// Deterministic: one Rng stream seeded by the constructor; the same seed and the same
// sequence of calls give the same results on every host. A single-level cache draws from
// it exactly as the one-level model before the hierarchy did (same seed, same run).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "dmahil/v1/board.pb.h"
#include "sim/memory.h"
#include "sim/rng.h"

namespace dmahil::sim {

/// A level of the hierarchy, for IsCachedIn.
enum class CacheLevel {
  kL1,      // the private L1 of one CPU (absent on single-level boards)
  kShared,  // the shared last level: the point of coherency
};

/// Counters of the model's own events (for tests and statistics).
struct CacheStats {
  uint64_t write_backs = 0;       // dirty lines written to memory (any cause)
  uint64_t random_evictions = 0;  // valid lines evicted by the eviction_ppm roll, any level
  uint64_t prefetches = 0;        // lines allocated by speculative prefetch
};

class Cache {
 public:
  /// One CPU, one level: `geometry` is the shared level (the PoC); no L1.
  /// geometry: validated geometry (power-of-two line size and sets, ways >= 1).
  /// memory: backing machine memory; must outlive the cache.
  Cache(const v1::CacheGeometry& geometry, MachineMemory& memory, uint64_t seed);

  /// The hierarchy of a validated board: max(1, board.cpus()) CPUs, each with a private
  /// L1 of geometry board.l1() if board.has_l1() and board.l1().line_size() != 0, in front
  /// of the shared level board.cache(). Throws SimError(kInvalidArgument) if the L1 line
  /// size differs from the shared level's. memory must outlive the cache.
  Cache(const v1::Board& board, MachineMemory& memory, uint64_t seed);

  /// Line size of every level, bytes.
  uint32_t line_size() const { return line_size_; }
  /// Number of CPUs (>= 1); valid cpu arguments are 0 .. cpus() - 1.
  unsigned cpus() const { return cpus_; }
  /// 2 with per-CPU L1s, else 1.
  unsigned levels() const { return l1_.empty() ? 1 : 2; }

  /// CPU load / store by `cpu` at a machine address, through its L1 and the shared level,
  /// coherent with the other CPUs. Throws SimError(kOutOfRange) if the range is not RAM,
  /// SimError(kInvalidArgument) if cpu >= cpus(); nothing is changed then.
  void Read(uint64_t addr, uint8_t* dst, uint64_t len, unsigned cpu = 0);
  void Write(uint64_t addr, const uint8_t* src, uint64_t len, unsigned cpu = 0);

  /// Maintenance to the PoC by machine address range, on every level of every CPU (see
  /// the file comment). Addresses outside RAM are ignored, as DC ops on non-cached
  /// addresses are. Never throws.
  void Clean(uint64_t addr, uint64_t len);
  void Invalidate(uint64_t addr, uint64_t len);
  void CleanInvalidate(uint64_t addr, uint64_t len);

  /// Coherent-device hooks: a snooping device read sees the newest dirty data of any level
  /// (L1 over shared over memory); a snooping write updates memory and every cached copy
  /// (no allocation, dirty state kept). Throw SimError(kOutOfRange) outside RAM.
  void SnoopRead(uint64_t addr, uint8_t* dst, uint64_t len) const;
  void SnoopWrite(uint64_t addr, const uint8_t* src, uint64_t len);

  /// Number of valid / dirty lines summed over every level and CPU (a line held by an L1
  /// and the shared level counts twice).
  uint64_t valid_lines() const;
  uint64_t dirty_lines() const;
  /// True if the line holding machine address addr is cached in any level of any CPU.
  bool IsCached(uint64_t addr) const;
  /// True if the line holding addr is in `level` (for kL1: CPU cpu's L1; cpu is ignored
  /// for kShared). Throws SimError(kInvalidArgument) if cpu >= cpus().
  bool IsCachedIn(CacheLevel level, uint64_t addr, unsigned cpu = 0) const;
  const CacheStats& stats() const { return stats_; }

 private:
  static constexpr uint64_t kNoLine = ~uint64_t{0};  // tag of an invalid slot
  static constexpr uint8_t kDirty = 1;               // M (with kExclusive in an L1)
  static constexpr uint8_t kExclusive = 2;           // E: no other L1 holds the line

  // One set-associative array. tags[slot] is the line-aligned machine address, or kNoLine.
  struct Level {
    explicit Level(const v1::CacheGeometry& g);
    int64_t Find(uint64_t line) const {  // slot or -1
      if (valid == 0) return -1;         // e.g. the L1 of a CPU nobody runs on
      return FirstInSet(line, line);
    }
    // The first slot of line's set whose tag is `tag` (kNoLine: the first free slot), or
    // -1. Each slot has a one-byte fingerprint of its tag (0 when free), and the set's
    // fingerprints are compared 16 at a time with SSE2 (up to 16 ways), else 8 at a time
    // in a 64-bit word; only the (nearly always zero or one) candidates are compared with
    // the full tags, lowest way first.
    int64_t FirstInSet(uint64_t line, uint64_t tag) const {
      constexpr uint64_t kOnes = 0x0101010101010101ULL;
      constexpr uint64_t kHighs = 0x8080808080808080ULL;
      const uint64_t base = ((line >> line_shift) & set_mask) * ways;
      const uint8_t fingerprint = tag == kNoLine ? 0 : Fingerprint(tag);
#if defined(__SSE2__)
      if (ways <= 16) {  // one compare, and no branch on which half the way is in
        const __m128i set =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(fingerprints.data() + base));
        const __m128i same = _mm_cmpeq_epi8(set, _mm_set1_epi8(static_cast<char>(fingerprint)));
        auto candidates = static_cast<uint32_t>(_mm_movemask_epi8(same)) & ((1u << ways) - 1);
        while (candidates != 0) {
          const uint64_t slot = base + static_cast<unsigned>(std::countr_zero(candidates));
          if (tags[slot] == tag) return static_cast<int64_t>(slot);
          candidates &= candidates - 1;
        }
        return -1;
      }
#endif
      const uint64_t want = kOnes * fingerprint;
      for (uint32_t from = 0; from < ways; from += 8) {
        uint64_t word;
        std::memcpy(&word, fingerprints.data() + base + from, sizeof word);
        const uint64_t x = word ^ want;
        // The high bit of every zero byte of x (and maybe of some bytes above one: a
        // candidate is only a candidate).
        uint64_t candidates = (x - kOnes) & ~x & kHighs;
        if (ways - from < 8) candidates &= (uint64_t{1} << (8 * (ways - from))) - 1;
        while (candidates != 0) {
          const uint64_t slot =
              base + from + static_cast<unsigned>(std::countr_zero(candidates)) / 8;
          if (tags[slot] == tag) return static_cast<int64_t>(slot);
          candidates &= candidates - 1;
        }
      }
      return -1;
    }
    // One pass over line's set: the slot holding line (hit, or -1) and the first free
    // slot (free, or -1), as Find and FirstInSet(line, kNoLine) would give them.
    struct Probe {
      int64_t hit;
      int64_t free;
    };
    Probe ProbeSet(uint64_t line) const {
      const uint64_t base = ((line >> line_shift) & set_mask) * ways;
      if (valid == 0) return {-1, static_cast<int64_t>(base)};
#if defined(__SSE2__)
      if (ways <= 16) {
        const __m128i set =
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(fingerprints.data() + base));
        const uint32_t in_set = (1u << ways) - 1;
        const auto match = [&](uint8_t fp) {
          return static_cast<uint32_t>(
                     _mm_movemask_epi8(_mm_cmpeq_epi8(set, _mm_set1_epi8(static_cast<char>(fp))))) &
                 in_set;
        };
        const uint32_t empty = match(0);
        Probe p{-1, empty != 0 ? static_cast<int64_t>(
                                     base + static_cast<unsigned>(std::countr_zero(empty)))
                               : -1};
        for (uint32_t c = match(Fingerprint(line)); c != 0; c &= c - 1) {
          const uint64_t slot = base + static_cast<unsigned>(std::countr_zero(c));
          if (tags[slot] == line) {
            p.hit = static_cast<int64_t>(slot);
            break;
          }
        }
        return p;
      }
#endif
      return {FirstInSet(line, line), FirstInSet(line, kNoLine)};
    }
    uint8_t Fingerprint(uint64_t line) const {  // never 0
      return static_cast<uint8_t>(0x80 | (((line >> line_shift) * 0x9E3779B97F4A7C15ULL) >> 57));
    }
    // Every change of a tag goes through Place or Drop, which keep `valid` and the
    // fingerprints exact.
    void Place(uint64_t slot, uint64_t line, uint8_t st) {
      valid += tags[slot] == kNoLine;
      tags[slot] = line;
      state[slot] = st;
      fingerprints[slot] = Fingerprint(line);
    }
    void Drop(uint64_t slot) {
      valid -= tags[slot] != kNoLine;
      tags[slot] = kNoLine;
      state[slot] = 0;
      fingerprints[slot] = 0;
    }
    uint8_t* Data(uint64_t slot) { return data.data() + (slot << line_shift); }
    const uint8_t* Data(uint64_t slot) const { return data.data() + (slot << line_shift); }

    unsigned line_shift;
    uint64_t set_mask;
    uint32_t ways;
    uint32_t eviction_ppm;
    uint32_t prefetch_ppm;
    uint64_t valid = 0;                 // slots whose tag is not kNoLine
    std::vector<uint64_t> tags;         // sets * ways
    std::vector<uint8_t> state;         // kDirty | kExclusive per slot
    std::vector<uint8_t> fingerprints;  // per slot (0: free), + 16 bytes of padding
    std::vector<uint8_t> data;          // sets * ways * line size
  };

  // The line's bytes for cpu. whole: a store that overwrites the entire line, so a miss
  // need not fetch the old bytes (false for a load or a partial store).
  uint8_t* Access(unsigned cpu, uint64_t line, bool write, bool whole);
  uint8_t* Upgrade(unsigned cpu, uint64_t line, uint64_t slot);  // store to a Shared L1 line
  void AfterAccess(unsigned cpu, uint64_t line);                 // random eviction, prefetch
  void AfterAccessTwoLevels(unsigned cpu, uint64_t line);        // AfterAccess with L1s
  void RandomEviction(Level* l1, unsigned cpu);  // a random slot of l1 (cpu's) or shared
  // A free slot in line's set: `free` if it is one (the probe's), else a random victim.
  uint64_t SharedVictim(uint64_t line, int64_t free);
  uint64_t SharedLookup(uint64_t line, bool whole);              // find, else fill (see FillL1)
  uint64_t SharedFill(uint64_t line, bool whole, int64_t free);  // a shared-level miss
  void SharedPut(uint64_t line, const uint8_t* data);            // L1 dirty data -> shared
  uint64_t L1Victim(unsigned cpu, uint64_t line, int64_t free);  // the same in cpu's L1
  uint8_t* FillL1(unsigned cpu, uint64_t line, bool write, bool whole,
                  int64_t free);  // L1 miss; free: the probe's free L1 slot
  void EvictL1(unsigned cpu, uint64_t slot);
  void EvictShared(uint64_t slot);
  void Prefetch(unsigned cpu, uint64_t line, bool into_l1);
  void CleanLine(uint64_t line, bool invalidate);  // DC CVAC / DC CIVAC everywhere
  void DropLine(uint64_t line);                    // DC IVAC everywhere
  // fn(line) for every line of [first, end) (line-aligned) that may be cached; fn may
  // drop lines but not allocate any.
  template <typename Fn>
  void ForEachCachedLine(uint64_t first, uint64_t end, Fn&& fn);
  void CheckCpu(unsigned cpu) const;
  uint64_t Pick(uint64_t n);  // rng_.Below(n), n > 0

  uint32_t line_size_;
  uint64_t line_mask_;  // ~(line_size - 1)
  unsigned cpus_;
  MachineMemory& memory_;
  Rng rng_;
  Level shared_;
  std::vector<Level> l1_;  // one per CPU; empty: the shared level is the only one
  CacheStats stats_;
};

}  // namespace dmahil::sim
