#include "sim/cache.h"

#include <algorithm>
#include <cstring>

#include "sim/chunks.h"

namespace dmahil::sim {

Cache::Cache(const v1::CacheGeometry& geometry, MachineMemory& memory, uint64_t seed)
    : line_size_(geometry.line_size()),
      sets_(geometry.sets()),
      ways_(geometry.ways()),
      eviction_ppm_(geometry.eviction_ppm()),
      memory_(memory),
      rng_(seed),
      lines_(uint64_t{sets_} * ways_),
      data_(uint64_t{sets_} * ways_ * line_size_) {}

int64_t Cache::Find(uint64_t line_addr) const {
  const uint64_t base = SetOf(line_addr) * ways_;
  for (uint64_t w = 0; w < ways_; ++w) {
    const Line& l = lines_[base + w];
    if (l.valid && l.tag == line_addr) return static_cast<int64_t>(base + w);
  }
  return -1;
}

void Cache::WriteBack(uint64_t slot) {
  Line& l = lines_[slot];
  if (l.valid && l.dirty) {
    memory_.Write(l.tag, DataOf(slot), line_size_);
    l.dirty = false;
  }
}

void Cache::Evict(uint64_t slot) {
  WriteBack(slot);
  lines_[slot].valid = false;
}

uint64_t Cache::Allocate(uint64_t line_addr) {
  const uint64_t base = SetOf(line_addr) * ways_;
  uint64_t slot = base + ways_;
  for (uint64_t w = 0; w < ways_; ++w) {
    if (!lines_[base + w].valid) {
      slot = base + w;
      break;
    }
  }
  if (slot == base + ways_) {
    slot = base + rng_.Below(ways_);
    Evict(slot);
  }
  memory_.Read(line_addr, DataOf(slot), line_size_);
  lines_[slot] = Line{line_addr, true, false};
  return slot;
}

void Cache::MaybeRandomEviction() {
  if (!rng_.ChancePpm(eviction_ppm_)) return;
  const uint64_t slot = rng_.Below(lines_.size());
  if (lines_[slot].valid) Evict(slot);
}

uint64_t Cache::Lookup(uint64_t line_addr) {
  const int64_t slot = Find(line_addr);
  return slot >= 0 ? static_cast<uint64_t>(slot) : Allocate(line_addr);
}

void Cache::Read(uint64_t addr, uint8_t* dst, uint64_t len) {
  if (!memory_.Contains(addr, len)) memory_.Read(addr, dst, len);  // throws kOutOfRange
  ForEachChunk(addr, len, line_size_, [&](uint64_t at, uint64_t done, uint64_t n) {
    const uint64_t line_addr = at & ~uint64_t{line_size_ - 1};
    std::memcpy(dst + done, DataOf(Lookup(line_addr)) + (at - line_addr), n);
    MaybeRandomEviction();
  });
}

void Cache::Write(uint64_t addr, const uint8_t* src, uint64_t len) {
  if (!memory_.Contains(addr, len)) memory_.Write(addr, src, len);  // throws kOutOfRange
  ForEachChunk(addr, len, line_size_, [&](uint64_t at, uint64_t done, uint64_t n) {
    const uint64_t line_addr = at & ~uint64_t{line_size_ - 1};
    const uint64_t slot = Lookup(line_addr);
    std::memcpy(DataOf(slot) + (at - line_addr), src + done, n);
    lines_[slot].dirty = true;
    MaybeRandomEviction();
  });
}

void Cache::Clean(uint64_t addr, uint64_t len) {
  if (len == 0) return;
  const uint64_t mask = ~uint64_t{line_size_ - 1};
  for (uint64_t a = addr & mask; a < addr + len; a += line_size_) {
    const int64_t slot = Find(a);
    if (slot >= 0) WriteBack(static_cast<uint64_t>(slot));
  }
}

void Cache::CleanInvalidate(uint64_t addr, uint64_t len) {
  if (len == 0) return;
  const uint64_t mask = ~uint64_t{line_size_ - 1};
  for (uint64_t a = addr & mask; a < addr + len; a += line_size_) {
    const int64_t slot = Find(a);
    if (slot >= 0) Evict(static_cast<uint64_t>(slot));
  }
}

void Cache::Invalidate(uint64_t addr, uint64_t len) {
  if (len == 0) return;
  const uint64_t mask = ~uint64_t{line_size_ - 1};
  const uint64_t end = addr + len;
  for (uint64_t a = addr & mask; a < end; a += line_size_) {
    const int64_t slot = Find(a);
    if (slot < 0) continue;
    const bool partial = a < addr || a + line_size_ > end;
    if (partial) {
      Evict(static_cast<uint64_t>(slot));  // DC CIVAC on the edges
    } else {
      lines_[static_cast<uint64_t>(slot)].valid = false;  // DC IVAC: dirty data is lost
    }
  }
}

void Cache::SnoopRead(uint64_t addr, uint8_t* dst, uint64_t len) const {
  memory_.Read(addr, dst, len);
  const uint64_t mask = ~uint64_t{line_size_ - 1};
  for (uint64_t a = addr & mask; a < addr + len; a += line_size_) {
    const int64_t slot = Find(a);
    if (slot < 0 || !lines_[static_cast<uint64_t>(slot)].dirty) continue;
    const uint64_t lo = std::max(a, addr);
    const uint64_t hi = std::min(a + line_size_, addr + len);
    std::memcpy(dst + (lo - addr), DataOf(static_cast<uint64_t>(slot)) + (lo - a), hi - lo);
  }
}

void Cache::SnoopWrite(uint64_t addr, const uint8_t* src, uint64_t len) {
  memory_.Write(addr, src, len);
  const uint64_t mask = ~uint64_t{line_size_ - 1};
  for (uint64_t a = addr & mask; a < addr + len; a += line_size_) {
    const int64_t slot = Find(a);
    if (slot < 0) continue;
    const uint64_t lo = std::max(a, addr);
    const uint64_t hi = std::min(a + line_size_, addr + len);
    std::memcpy(DataOf(static_cast<uint64_t>(slot)) + (lo - a), src + (lo - addr), hi - lo);
  }
}

uint64_t Cache::valid_lines() const {
  return static_cast<uint64_t>(
      std::count_if(lines_.begin(), lines_.end(), [](const Line& l) { return l.valid; }));
}

uint64_t Cache::dirty_lines() const {
  return static_cast<uint64_t>(std::count_if(lines_.begin(), lines_.end(),
                                             [](const Line& l) { return l.valid && l.dirty; }));
}

bool Cache::IsCached(uint64_t addr) const { return Find(addr & ~uint64_t{line_size_ - 1}) >= 0; }

}  // namespace dmahil::sim
