#include "sim/cache.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "sim/chunks.h"
#include "sim/error.h"

namespace dmahil::sim {

Cache::Level::Level(const v1::CacheGeometry& g)
    : line_shift(static_cast<unsigned>(std::countr_zero(g.line_size()))),
      set_mask(uint64_t{g.sets()} - 1),
      ways(g.ways()),
      eviction_ppm(g.eviction_ppm()),
      prefetch_ppm(g.prefetch_ppm()),
      tags(uint64_t{g.sets()} * g.ways(), kNoLine),
      state(uint64_t{g.sets()} * g.ways(), 0),
      fingerprints(uint64_t{g.sets()} * g.ways() + 16, 0),
      data(uint64_t{g.sets()} * g.ways() * g.line_size()) {}

Cache::Cache(const v1::CacheGeometry& geometry, MachineMemory& memory, uint64_t seed)
    : line_size_(geometry.line_size()),
      line_mask_(~uint64_t{geometry.line_size() - 1}),
      cpus_(1),
      memory_(memory),
      rng_(seed),
      shared_(geometry) {}

Cache::Cache(const v1::Board& board, MachineMemory& memory, uint64_t seed)
    : Cache(board.cache(), memory, seed) {
  cpus_ = std::max(1u, board.cpus());
  if (!board.has_l1() || board.l1().line_size() == 0) return;
  if (board.l1().line_size() != line_size_)
    throw SimError(ErrorCode::kInvalidArgument,
                   fmt::format("l1.line_size {} differs from cache.line_size {}; the model "
                               "needs one line size for every level",
                               board.l1().line_size(), line_size_));
  l1_.reserve(cpus_);
  for (unsigned c = 0; c < cpus_; ++c) l1_.emplace_back(board.l1());
}

// rng_.Below(n), the same draw and the same value, without a division when n is a power
// of two (Next() % n == Next() & (n - 1) then).
uint64_t Cache::Pick(uint64_t n) {
  if ((n & (n - 1)) == 0) return rng_.Next() & (n - 1);
  return rng_.Below(n);
}

void Cache::CheckCpu(unsigned cpu) const {
  if (cpu >= cpus_)
    throw SimError(ErrorCode::kInvalidArgument,
                   fmt::format("cpu {} does not exist; the board has {} CPUs", cpu, cpus_));
}

// ---- shared level ------------------------------------------------------------------------

void Cache::EvictShared(uint64_t slot) {
  if (shared_.state[slot] & kDirty) {
    memory_.WriteBack(shared_.tags[slot], shared_.Data(slot), line_size_);
    ++stats_.write_backs;
  }
  shared_.Drop(slot);
}

uint64_t Cache::SharedVictim(uint64_t line, int64_t free) {
  if (free >= 0) return static_cast<uint64_t>(free);
  const uint64_t base = ((line >> shared_.line_shift) & shared_.set_mask) * shared_.ways;
  const uint64_t slot = base + Pick(shared_.ways);
  EvictShared(slot);
  return slot;
}

// whole: the caller overwrites the entire line (see FillL1), so a miss reads nothing: the
// new slot's bytes are left as they are (a single-level store writes them next).
uint64_t Cache::SharedLookup(uint64_t line, bool whole) {
  const Level::Probe p = shared_.ProbeSet(line);
  return p.hit >= 0 ? static_cast<uint64_t>(p.hit) : SharedFill(line, whole, p.free);
}

// A shared-level miss of line: a clean slot for it (free, see SharedVictim), read from memory
// unless whole.
uint64_t Cache::SharedFill(uint64_t line, bool whole, int64_t free) {
  const uint64_t slot = SharedVictim(line, free);
  if (!whole) memory_.Read(line, shared_.Data(slot), line_size_);
  shared_.Place(slot, line, 0);
  return slot;
}

void Cache::SharedPut(uint64_t line, const uint8_t* data) {
  const Level::Probe p = shared_.ProbeSet(line);
  const uint64_t slot = p.hit >= 0 ? static_cast<uint64_t>(p.hit) : SharedVictim(line, p.free);
  CopyBytes(shared_.Data(slot), data, line_size_);
  shared_.Place(slot, line, kDirty);
}

// ---- L1s ---------------------------------------------------------------------------------

void Cache::EvictL1(unsigned cpu, uint64_t slot) {
  Level& l1 = l1_[cpu];
  if (l1.state[slot] & kDirty) SharedPut(l1.tags[slot], l1.Data(slot));
  l1.Drop(slot);
}

uint64_t Cache::L1Victim(unsigned cpu, uint64_t line, int64_t free) {
  Level& l1 = l1_[cpu];
  if (free >= 0) return static_cast<uint64_t>(free);
  const uint64_t base = ((line >> l1.line_shift) & l1.set_mask) * l1.ways;
  const uint64_t slot = base + Pick(l1.ways);
  EvictL1(cpu, slot);
  return slot;
}

// An L1 miss: snoop the other L1s (MESI), else fill through the shared level. A store of
// the whole line (whole) fetches no old bytes: neither the L1 slot (the caller stores the
// line into it next) nor a shared slot it allocates, which keeps whatever bytes it held.
// That slot is clean and its bytes are never read while the line is Modified in an L1
// (every way out of Modified writes the L1 copy into the shared level or drops both), so
// the model behaves as if memory had been read.
uint8_t* Cache::FillL1(unsigned cpu, uint64_t line, bool write, bool whole, int64_t free) {
  Level& l1 = l1_[cpu];
  const uint64_t slot = L1Victim(cpu, line, free);
  uint8_t* dst = l1.Data(slot);
  bool from_peer = false;
  for (unsigned d = 0; d < cpus_; ++d) {
    if (d == cpu) continue;
    Level& peer = l1_[d];
    const int64_t hit = peer.Find(line);
    if (hit < 0) continue;
    const auto p = static_cast<uint64_t>(hit);
    if (!from_peer && !whole) CopyBytes(dst, peer.Data(p), line_size_);
    from_peer = true;
    if (write) {  // read-for-ownership: the other copies go; a Modified one moves here
      peer.Drop(p);
    } else {  // M -> S writes the data back into the shared level; E -> S
      if (peer.state[p] & kDirty) SharedPut(line, peer.Data(p));
      peer.state[p] = 0;
    }
  }
  if (!from_peer) {
    const uint64_t s = SharedLookup(line, whole);
    if (!whole) CopyBytes(dst, shared_.Data(s), line_size_);
  }
  l1.Place(slot, line, write ? kDirty | kExclusive : (from_peer ? 0 : kExclusive));
  return dst;
}

// A store to a Shared line in cpu's L1 (slot): invalidate the other L1s' copies (all
// clean: a Modified copy would be the only one), then Modified.
uint8_t* Cache::Upgrade(unsigned cpu, uint64_t line, uint64_t slot) {
  for (unsigned d = 0; d < cpus_; ++d) {
    if (d == cpu) continue;
    const int64_t p = l1_[d].Find(line);
    if (p < 0) continue;
    l1_[d].Drop(static_cast<uint64_t>(p));
  }
  l1_[cpu].state[slot] = kDirty | kExclusive;
  return l1_[cpu].Data(slot);
}

// The hot path: a hit in the accessing CPU's first level that needs no coherency action.
inline uint8_t* Cache::Access(unsigned cpu, uint64_t line, bool write, bool whole) {
  const bool single = l1_.empty();
  Level& level = single ? shared_ : l1_[cpu];
  const Level::Probe p = level.ProbeSet(line);
  if (p.hit < 0) {
    if (!single) return FillL1(cpu, line, write, whole, p.free);
    const uint64_t slot = SharedFill(line, whole, p.free);
    if (write) shared_.state[slot] = kDirty;
    return shared_.Data(slot);
  }
  const auto slot = static_cast<uint64_t>(p.hit);
  if (write) {
    if (!single && !(level.state[slot] & kExclusive)) return Upgrade(cpu, line, slot);
    level.state[slot] |= kDirty;
  }
  return level.Data(slot);
}

// ---- random eviction and prefetch ----------------------------------------------------------

void Cache::Prefetch(unsigned cpu, uint64_t line, bool into_l1) {
  const uint64_t next = line + line_size_;
  if (next < line || !memory_.Contains(next, line_size_) || IsCached(next)) return;
  const uint64_t s = SharedVictim(next, shared_.FirstInSet(next, kNoLine));
  memory_.Read(next, shared_.Data(s), line_size_);
  shared_.Place(s, next, 0);
  if (into_l1) {
    // may evict into the shared level
    const uint64_t slot = L1Victim(cpu, next, l1_[cpu].FirstInSet(next, kNoLine));
    const int64_t in_shared = shared_.Find(next);
    if (in_shared >= 0) {
      CopyBytes(l1_[cpu].Data(slot), shared_.Data(static_cast<uint64_t>(in_shared)), line_size_);
    } else {  // the L1 victim's write-back displaced it again: read memory directly
      memory_.Read(next, l1_[cpu].Data(slot), line_size_);
    }
    l1_[cpu].Place(slot, next, kExclusive);
  }
  ++stats_.prefetches;
}

// Rolls in a fixed order (L1 eviction, shared eviction, L1 prefetch, shared prefetch), so
// a seed gives the same run; a single-level cache rolls as the one-level model always did.
inline void Cache::AfterAccess(unsigned cpu, uint64_t line) {
  if (!l1_.empty()) return AfterAccessTwoLevels(cpu, line);
  if (rng_.ChancePpm(shared_.eviction_ppm)) RandomEviction(nullptr, 0);
  if (rng_.ChancePpm(shared_.prefetch_ppm)) Prefetch(cpu, line, false);
}

void Cache::AfterAccessTwoLevels(unsigned cpu, uint64_t line) {
  if (rng_.ChancePpm(l1_[cpu].eviction_ppm)) RandomEviction(&l1_[cpu], cpu);
  if (rng_.ChancePpm(shared_.eviction_ppm)) RandomEviction(nullptr, 0);
  if (rng_.ChancePpm(l1_[cpu].prefetch_ppm)) Prefetch(cpu, line, true);
  if (rng_.ChancePpm(shared_.prefetch_ppm)) Prefetch(cpu, line, false);
}

void Cache::RandomEviction(Level* l1, unsigned cpu) {
  const Level& level = l1 != nullptr ? *l1 : shared_;
  const uint64_t slot = Pick(level.tags.size());
  if (level.tags[slot] == kNoLine) return;
  if (l1 != nullptr) {
    EvictL1(cpu, slot);
  } else {
    EvictShared(slot);
  }
  ++stats_.random_evictions;
}

// ---- CPU accesses --------------------------------------------------------------------------

void Cache::Read(uint64_t addr, uint8_t* dst, uint64_t len, unsigned cpu) {
  CheckCpu(cpu);
  if (!memory_.Contains(addr, len)) memory_.Read(addr, dst, len);  // throws kOutOfRange
  ForEachChunk(addr, len, line_size_, [&](uint64_t at, uint64_t done, uint64_t n) {
    const uint64_t line = at & line_mask_;
    CopyBytes(dst + done, Access(cpu, line, false, false) + (at - line), n);
    AfterAccess(cpu, line);
  });
  memory_.FinishWriteBacks();
}

void Cache::Write(uint64_t addr, const uint8_t* src, uint64_t len, unsigned cpu) {
  CheckCpu(cpu);
  if (!memory_.Contains(addr, len)) memory_.Write(addr, src, len);  // throws kOutOfRange
  ForEachChunk(addr, len, line_size_, [&](uint64_t at, uint64_t done, uint64_t n) {
    const uint64_t line = at & line_mask_;
    CopyBytes(Access(cpu, line, true, n == line_size_) + (at - line), src + done, n);
    AfterAccess(cpu, line);
  });
  memory_.FinishWriteBacks();
}

// ---- maintenance ---------------------------------------------------------------------------

// The newest copy is a Modified L1 line if any (it is then the only L1 copy), else a dirty
// shared line. It goes to memory; the shared copy, if any, is updated so that an older
// dirty shared line can never be written back over it later.
void Cache::CleanLine(uint64_t line, bool invalidate) {
  const uint8_t* newest = nullptr;
  for (Level& l1 : l1_) {
    const int64_t hit = l1.Find(line);
    if (hit < 0) continue;
    const auto s = static_cast<uint64_t>(hit);
    if (l1.state[s] & kDirty) newest = l1.Data(s);
    l1.state[s] &= static_cast<uint8_t>(~kDirty);
    if (invalidate) l1.Drop(s);
  }
  const int64_t hit = shared_.Find(line);
  if (hit >= 0) {
    const auto s = static_cast<uint64_t>(hit);
    if (newest != nullptr) {
      CopyBytes(shared_.Data(s), newest, line_size_);
    } else if (shared_.state[s] & kDirty) {
      newest = shared_.Data(s);
    }
    shared_.state[s] = 0;
    if (invalidate) shared_.Drop(s);
  }
  if (newest != nullptr) {
    memory_.WriteBack(line, newest, line_size_);  // an invalidated slot's data is still intact
    ++stats_.write_backs;
  }
}

void Cache::DropLine(uint64_t line) {
  for (Level& l1 : l1_) {
    const int64_t hit = l1.Find(line);
    if (hit < 0) continue;
    l1.Drop(static_cast<uint64_t>(hit));
  }
  const int64_t hit = shared_.Find(line);
  if (hit < 0) return;
  shared_.Drop(static_cast<uint64_t>(hit));
}

// Line by line; or, when the range has more lines than the hierarchy has slots, by
// scanning every level's tags (each L1, then the shared level) for lines inside the range.
// The scan may visit a line more than once (one visit per copy that is still cached) and
// in another order: the DC ops of the callers act on one line each, so they commute, and
// a second clean of a line finds nothing dirty.
template <typename Fn>
void Cache::ForEachCachedLine(uint64_t first, uint64_t end, Fn&& fn) {
  uint64_t slots = shared_.tags.size();
  for (const Level& l1 : l1_) slots += l1.tags.size();
  if ((end - first) / line_size_ <= slots) {
    for (uint64_t a = first; a < end; a += line_size_) fn(a);
    return;
  }
  const auto scan = [&](const Level& level) {
    for (const uint64_t tag : level.tags)  // fn only drops: the array is not reallocated
      if (tag != kNoLine && tag >= first && tag < end) fn(tag);
  };
  for (const Level& l1 : l1_) scan(l1);
  scan(shared_);
}

void Cache::Clean(uint64_t addr, uint64_t len) {
  if (len == 0) return;
  ForEachCachedLine(addr & line_mask_, addr + len, [&](uint64_t a) { CleanLine(a, false); });
  memory_.FinishWriteBacks();
}

void Cache::CleanInvalidate(uint64_t addr, uint64_t len) {
  if (len == 0) return;
  ForEachCachedLine(addr & line_mask_, addr + len, [&](uint64_t a) { CleanLine(a, true); });
  memory_.FinishWriteBacks();
}

void Cache::Invalidate(uint64_t addr, uint64_t len) {
  if (len == 0) return;
  const uint64_t end = addr + len;
  ForEachCachedLine(addr & line_mask_, end, [&](uint64_t a) {
    if (a < addr || a + line_size_ > end) {
      CleanLine(a, true);  // DC CIVAC on the edges
    } else {
      DropLine(a);  // DC IVAC: dirty data is lost
    }
  });
  memory_.FinishWriteBacks();
}

// ---- coherent device -------------------------------------------------------------------------

void Cache::SnoopRead(uint64_t addr, uint8_t* dst, uint64_t len) const {
  memory_.Read(addr, dst, len);
  for (uint64_t a = addr & line_mask_; a < addr + len; a += line_size_) {
    const uint8_t* newest = nullptr;
    const int64_t hit = shared_.Find(a);
    if (hit >= 0 && (shared_.state[static_cast<uint64_t>(hit)] & kDirty))
      newest = shared_.Data(static_cast<uint64_t>(hit));
    for (const Level& l1 : l1_) {
      const int64_t h = l1.Find(a);
      if (h >= 0 && (l1.state[static_cast<uint64_t>(h)] & kDirty))
        newest = l1.Data(static_cast<uint64_t>(h));
    }
    if (newest == nullptr) continue;
    const uint64_t lo = std::max(a, addr);
    const uint64_t hi = std::min(a + line_size_, addr + len);
    CopyBytes(dst + (lo - addr), newest + (lo - a), hi - lo);
  }
}

void Cache::SnoopWrite(uint64_t addr, const uint8_t* src, uint64_t len) {
  memory_.Write(addr, src, len);
  for (uint64_t a = addr & line_mask_; a < addr + len; a += line_size_) {
    const uint64_t lo = std::max(a, addr);
    const uint64_t hi = std::min(a + line_size_, addr + len);
    const auto patch = [&](Level& level) {
      const int64_t hit = level.Find(a);
      if (hit >= 0)
        CopyBytes(level.Data(static_cast<uint64_t>(hit)) + (lo - a), src + (lo - addr), hi - lo);
    };
    patch(shared_);
    for (Level& l1 : l1_) patch(l1);
  }
}

// ---- inspection ------------------------------------------------------------------------------

uint64_t Cache::valid_lines() const {
  const auto count = [](const Level& l) {
    return static_cast<uint64_t>(
        std::count_if(l.tags.begin(), l.tags.end(), [](uint64_t t) { return t != kNoLine; }));
  };
  uint64_t n = count(shared_);
  for (const Level& l1 : l1_) n += count(l1);
  return n;
}

uint64_t Cache::dirty_lines() const {
  const auto count = [](const Level& l) {
    uint64_t n = 0;
    for (uint64_t s = 0; s < l.tags.size(); ++s) n += l.tags[s] != kNoLine && (l.state[s] & kDirty);
    return n;
  };
  uint64_t n = count(shared_);
  for (const Level& l1 : l1_) n += count(l1);
  return n;
}

bool Cache::IsCached(uint64_t addr) const {
  const uint64_t line = addr & line_mask_;
  if (shared_.Find(line) >= 0) return true;
  return std::any_of(l1_.begin(), l1_.end(), [&](const Level& l1) { return l1.Find(line) >= 0; });
}

bool Cache::IsCachedIn(CacheLevel level, uint64_t addr, unsigned cpu) const {
  CheckCpu(cpu);
  if (level == CacheLevel::kShared) return shared_.Find(addr & line_mask_) >= 0;
  return !l1_.empty() && l1_[cpu].Find(addr & line_mask_) >= 0;
}

}  // namespace dmahil::sim
