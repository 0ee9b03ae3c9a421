#include "sim/cache.h"

#include <array>
#include <vector>

#include <gtest/gtest.h>

#include "sim/error.h"
#include "sim/rng.h"

namespace dmahil::sim {
namespace {

v1::CacheGeometry Geometry(uint32_t eviction_ppm) {
  v1::CacheGeometry g;
  g.set_line_size(64);
  g.set_sets(16);
  g.set_ways(2);
  g.set_eviction_ppm(eviction_ppm);
  return g;
}

std::vector<v1::MemoryBank> OneBank() {
  v1::MemoryBank b;
  b.set_base(0x10000);
  b.set_size(0x10000);
  return {b};
}

uint8_t MemByte(MachineMemory& m, uint64_t addr) {
  uint8_t v = 0;
  m.Read(addr, &v, 1);
  return v;
}

// A board with `cpus` CPUs, each with a small private L1 (4 sets x 2 ways of 64 B lines)
// in front of a shared level of 16 sets x 4 ways, over OneBank(). ppm: {L1 eviction,
// L1 prefetch, shared eviction, shared prefetch}.
struct Ppm {
  uint32_t l1_evict = 0;
  uint32_t l1_prefetch = 0;
  uint32_t shared_evict = 0;
  uint32_t shared_prefetch = 0;
};
v1::Board TwoLevels(uint32_t cpus, Ppm ppm = {}) {
  v1::Board b;
  *b.add_ram() = OneBank()[0];
  b.set_cpus(cpus);
  v1::CacheGeometry* l1 = b.mutable_l1();
  l1->set_line_size(64);
  l1->set_sets(4);
  l1->set_ways(2);
  l1->set_eviction_ppm(ppm.l1_evict);
  l1->set_prefetch_ppm(ppm.l1_prefetch);
  v1::CacheGeometry* shared = b.mutable_cache();
  shared->set_line_size(64);
  shared->set_sets(16);
  shared->set_ways(4);
  shared->set_eviction_ppm(ppm.shared_evict);
  shared->set_prefetch_ppm(ppm.shared_prefetch);
  return b;
}

uint8_t CpuByte(Cache& c, uint64_t addr, unsigned cpu) {
  uint8_t v = 0;
  c.Read(addr, &v, 1, cpu);
  return v;
}

TEST(Cache, WriteBackOnlyOnClean) {
  MachineMemory mem(OneBank());
  Cache cache(Geometry(0), mem, 1);
  const uint8_t v = 0xAB;
  cache.Write(0x10040, &v, 1);
  EXPECT_EQ(MemByte(mem, 0x10040), 0) << "write-back cache must not write through";
  uint8_t r = 0;
  cache.Read(0x10040, &r, 1);
  EXPECT_EQ(r, 0xAB);
  cache.Clean(0x10040, 1);
  EXPECT_EQ(MemByte(mem, 0x10040), 0xAB);
  EXPECT_TRUE(cache.IsCached(0x10040)) << "clean keeps the line";
}

TEST(Cache, InvalidateWholeLineDropsDirtyData) {
  MachineMemory mem(OneBank());
  Cache cache(Geometry(0), mem, 1);
  std::array<uint8_t, 64> line{};
  line.fill(0x11);
  cache.Write(0x10000, line.data(), line.size());
  cache.Invalidate(0x10000, 64);
  EXPECT_FALSE(cache.IsCached(0x10000));
  EXPECT_EQ(MemByte(mem, 0x10000), 0) << "DC IVAC discards dirty data";
}

TEST(Cache, InvalidatePartialLineCleansTheEdges) {
  // dcache_inval_poc: a partial line at the edge is cleaned+invalidated so the CPU's
  // neighbouring bytes in the same line survive.
  MachineMemory mem(OneBank());
  Cache cache(Geometry(0), mem, 1);
  const uint8_t neighbour = 0x5A;
  cache.Write(0x10000, &neighbour, 1);  // byte 0 of the line: not in the range below
  cache.Invalidate(0x10020, 0x40);      // covers bytes 32..63 of line 0 and half of line 1
  EXPECT_EQ(MemByte(mem, 0x10000), 0x5A);
  EXPECT_FALSE(cache.IsCached(0x10000));
}

TEST(Cache, StaleLineServedUntilInvalidated) {
  MachineMemory mem(OneBank());
  Cache cache(Geometry(0), mem, 1);
  uint8_t r = 0;
  cache.Read(0x10080, &r, 1);  // line now valid, clean, holds 0
  const uint8_t dev = 0x77;
  mem.Write(0x10080, &dev, 1);  // a non-coherent device writes memory
  cache.Read(0x10080, &r, 1);
  EXPECT_EQ(r, 0) << "the CPU must see the stale line";
  cache.Invalidate(0x10080, 64);
  cache.Read(0x10080, &r, 1);
  EXPECT_EQ(r, 0x77);
}

TEST(Cache, RandomEvictionWritesDirtyLinesBack) {
  MachineMemory mem(OneBank());
  Cache cache(Geometry(1000000), mem, 7);  // an eviction on every access
  const uint8_t v = 0x42;
  for (uint64_t a = 0x10000; a < 0x10000 + 64 * 32; a += 64) cache.Write(a, &v, 1);
  uint64_t landed = 0;
  for (uint64_t a = 0x10000; a < 0x10000 + 64 * 32; a += 64) landed += MemByte(mem, a) == 0x42;
  EXPECT_GT(landed, 0u) << "evictions must write dirty lines back";
  EXPECT_LT(cache.valid_lines(), 32u);
}

TEST(Cache, SameSeedSameEvictions) {
  auto run = [](uint64_t seed) {
    MachineMemory mem(OneBank());
    Cache cache(Geometry(300000), mem, seed);
    const uint8_t v = 1;
    for (uint64_t a = 0x10000; a < 0x18000; a += 64) cache.Write(a, &v, 1);
    std::vector<uint8_t> out(0x8000);
    mem.Read(0x10000, out.data(), out.size());
    return out;
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
}

TEST(Cache, OutsideRamIsRefusedAndChangesNothing) {
  MachineMemory mem(OneBank());
  Cache cache(Geometry(0), mem, 1);
  uint8_t v = 1;
  EXPECT_THROW(cache.Write(0x1FFFF, &v, 2), SimError);
  EXPECT_EQ(cache.valid_lines(), 0u);
}

TEST(Cache, BoardWithoutL1IsOneLevel) {
  MachineMemory mem(OneBank());
  v1::Board board = TwoLevels(0);
  board.mutable_l1()->set_line_size(0);  // l1 present but empty: only the shared level
  Cache cache(board, mem, 1);
  EXPECT_EQ(cache.levels(), 1u);
  EXPECT_EQ(cache.cpus(), 1u) << "cpus 0 means 1";
  Cache two(TwoLevels(4), mem, 1);
  EXPECT_EQ(two.levels(), 2u);
  EXPECT_EQ(two.cpus(), 4u);
}

TEST(Cache, RefusesDifferentLineSizesAndUnknownCpus) {
  MachineMemory mem(OneBank());
  v1::Board board = TwoLevels(2);
  board.mutable_l1()->set_line_size(32);
  EXPECT_THROW(Cache(board, mem, 1), SimError);
  Cache cache(TwoLevels(2), mem, 1);
  uint8_t v = 1;
  EXPECT_THROW(cache.Write(0x10000, &v, 1, 2), SimError);
  EXPECT_EQ(cache.valid_lines(), 0u);
}

// A write-back cache (ARMv8 ARM, Write-Back Cacheable memory): a dirty L1 line reaches the
// next level only when it is evicted, and memory only when the shared level evicts it.
TEST(Cache, L1EvictionWritesBackIntoTheSharedLevelNotMemory) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(1, {.l1_evict = 1000000}), mem, 5);  // an L1 eviction per access
  const uint8_t v = 0x42;
  for (uint64_t a = 0x10000; a < 0x10000 + 64 * 8; a += 64) cache.Write(a, &v, 1);
  EXPECT_GT(cache.stats().random_evictions, 0u);
  uint64_t in_shared = 0;
  for (uint64_t a = 0x10000; a < 0x10000 + 64 * 8; a += 64) {
    EXPECT_EQ(MemByte(mem, a), 0) << "the shared level holds the victims, memory is untouched";
    in_shared += cache.IsCachedIn(CacheLevel::kShared, a) && !cache.IsCachedIn(CacheLevel::kL1, a);
  }
  EXPECT_GT(in_shared, 0u);
  EXPECT_EQ(cache.stats().write_backs, 0u);
  for (uint64_t a = 0x10000; a < 0x10000 + 64 * 8; a += 64) {
    uint8_t r = 0;
    cache.SnoopRead(a, &r, 1);
    EXPECT_EQ(r, 0x42) << "no data lost on the way down";
  }
}

TEST(Cache, SharedEvictionWritesBackToMemory) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(1, {.l1_evict = 1000000, .shared_evict = 1000000}), mem, 7);
  const uint8_t v = 0x42;
  for (uint64_t a = 0x10000; a < 0x10000 + 64 * 32; a += 64) cache.Write(a, &v, 1);
  uint64_t landed = 0;
  for (uint64_t a = 0x10000; a < 0x10000 + 64 * 32; a += 64) landed += MemByte(mem, a) == 0x42;
  EXPECT_GT(landed, 0u);
  EXPECT_EQ(cache.stats().write_backs, landed);
}

// Speculative prefetch: the ARMv8 ARM lets Normal memory be allocated speculatively at
// any time. That is why Linux invalidates FROM_DEVICE buffers again on unmap
// (arch_sync_dma_for_cpu -> dcache_inval_poc; Russell King's map/unmap table, LKML
// 2018-05-18, quoted in arch/arc/mm/dma.c: unmap FROM_DEV "invalidate* - only necessary
// if the CPU speculatively prefetches").
TEST(Cache, PrefetchedLineGoesStaleAfterADeviceWriteUntilInvalidated) {
  MachineMemory mem(OneBank());
  v1::CacheGeometry g = Geometry(0);
  g.set_prefetch_ppm(1000000);  // a prefetch on every access
  Cache cache(g, mem, 1);
  cache.Invalidate(0x10040, 64);             // dma_map_page(FROM_DEVICE): the buffer is not cached
  EXPECT_EQ(CpuByte(cache, 0x10000, 0), 0);  // the CPU touches the line before the buffer
  EXPECT_TRUE(cache.IsCached(0x10040)) << "the next line was allocated unasked";
  EXPECT_EQ(cache.dirty_lines(), 0u) << "prefetched lines are clean";
  EXPECT_GE(cache.stats().prefetches, 1u);
  const uint8_t dev = 0x77;
  mem.Write(0x10040, &dev, 1);  // the non-coherent device writes the buffer
  EXPECT_EQ(CpuByte(cache, 0x10040, 0), 0) << "without the unmap invalidate: stale";
  cache.Invalidate(0x10040, 64);  // dma_unmap_page(FROM_DEVICE)
  EXPECT_FALSE(cache.IsCached(0x10040));
  EXPECT_EQ(CpuByte(cache, 0x10040, 0), 0x77);
}

TEST(Cache, L1PrefetchFillsTheAccessingCpuOnly) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(2, {.l1_prefetch = 1000000}), mem, 1);
  EXPECT_EQ(CpuByte(cache, 0x10000, 1), 0);
  EXPECT_TRUE(cache.IsCachedIn(CacheLevel::kL1, 0x10040, 1));
  EXPECT_FALSE(cache.IsCachedIn(CacheLevel::kL1, 0x10040, 0));
  EXPECT_EQ(cache.dirty_lines(), 0u);
  const uint8_t dev = 0x77;
  mem.Write(0x10040, &dev, 1);
  EXPECT_EQ(CpuByte(cache, 0x10040, 1), 0) << "stale in CPU 1's L1";
  cache.Invalidate(0x10040, 64);  // broadcast: CPU 1's copy goes too
  EXPECT_EQ(CpuByte(cache, 0x10040, 1), 0x77);
}

TEST(Cache, PrefetchNeverCrossesOutOfRamNorReplacesCachedData) {
  MachineMemory mem(OneBank());
  v1::CacheGeometry g = Geometry(0);
  g.set_prefetch_ppm(1000000);
  Cache cache(g, mem, 1);
  EXPECT_EQ(CpuByte(cache, 0x1FFC0, 0), 0);  // the last line of RAM: its next line is not RAM
  EXPECT_EQ(cache.stats().prefetches, 0u);
  const uint8_t v = 0x33;
  cache.Write(0x10040, &v, 1);  // dirty line
  EXPECT_EQ(CpuByte(cache, 0x10000, 0), 0);
  EXPECT_EQ(CpuByte(cache, 0x10040, 0), 0x33) << "prefetch must not replace a cached line";
}

// DC CVAC cleans to the point of coherency (ARMv8 ARM, "Data cache maintenance by VA"):
// dirty data of every level goes to memory, not just to the next level.
TEST(Cache, CleanWritesL1DirtyDataToMemory) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(1), mem, 1);
  const uint8_t v = 0xAB;
  cache.Write(0x10040, &v, 1);
  EXPECT_TRUE(cache.IsCachedIn(CacheLevel::kL1, 0x10040));
  EXPECT_EQ(MemByte(mem, 0x10040), 0);
  cache.Clean(0x10040, 1);
  EXPECT_EQ(MemByte(mem, 0x10040), 0xAB);
  EXPECT_EQ(cache.dirty_lines(), 0u);
  EXPECT_TRUE(cache.IsCachedIn(CacheLevel::kL1, 0x10040)) << "clean keeps the line";
}

TEST(Cache, CleanAlsoRefreshesAnOlderDirtySharedCopy) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(1), mem, 3);
  const uint8_t v1 = 1;
  const uint8_t v2 = 2;
  cache.Write(0x10000, &v1, 1);
  // Lines of the same L1 set (4 sets of 64 B: every 0x100) push it out: dirty v1 goes down.
  for (uint64_t a = 0x10100; cache.IsCachedIn(CacheLevel::kL1, 0x10000); a += 0x100)
    (void)CpuByte(cache, a, 0);
  ASSERT_TRUE(cache.IsCachedIn(CacheLevel::kShared, 0x10000));
  EXPECT_EQ(cache.dirty_lines(), 1u);
  cache.Write(0x10000, &v2, 1);  // back in the L1, Modified, over the dirty v1 copy
  EXPECT_EQ(cache.dirty_lines(), 2u);
  cache.Clean(0x10000, 64);
  EXPECT_EQ(MemByte(mem, 0x10000), 2);
  EXPECT_EQ(cache.dirty_lines(), 0u) << "both copies are clean and hold v2";
  for (uint64_t a = 0x10100; cache.IsCachedIn(CacheLevel::kL1, 0x10000); a += 0x100)
    (void)CpuByte(cache, a, 0);
  EXPECT_EQ(CpuByte(cache, 0x10000, 0), 2) << "refilled from the shared copy";
  cache.CleanInvalidate(0x10000, 0x1000);  // no older copy may be written back over it
  EXPECT_EQ(MemByte(mem, 0x10000), 2);
  EXPECT_EQ(cache.valid_lines(), 0u);
}

// The CPUs' data caches are coherent with each other in hardware (ARMv8 ARM: Normal
// Inner Shareable memory, which Linux maps all RAM as; the cores keep their L1s coherent
// by MESI/MOESI snooping, as the Cortex-A53/A72 TRMs describe): a store on one CPU is seen
// by a load on another, dirty or not, without any cache maintenance.
TEST(Cache, StoreOnCpu0IsSeenByLoadOnCpu1) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(2), mem, 1);
  EXPECT_EQ(CpuByte(cache, 0x10000, 1), 0);  // CPU 1 caches the line (clean)
  const uint8_t v = 0x5A;
  cache.Write(0x10000, &v, 1, 0);
  EXPECT_FALSE(cache.IsCachedIn(CacheLevel::kL1, 0x10000, 1)) << "the store invalidated it";
  EXPECT_EQ(CpuByte(cache, 0x10000, 1), 0x5A) << "taken from CPU 0's dirty line";
  EXPECT_EQ(MemByte(mem, 0x10000), 0) << "not through memory";
  const uint8_t w = 0xA5;
  cache.Write(0x10001, &w, 1, 1);  // now CPU 1 owns it
  EXPECT_EQ(CpuByte(cache, 0x10000, 0), 0x5A);
  EXPECT_EQ(CpuByte(cache, 0x10001, 0), 0xA5);
  cache.Clean(0x10000, 64);
  EXPECT_EQ(MemByte(mem, 0x10000), 0x5A);
  EXPECT_EQ(MemByte(mem, 0x10001), 0xA5);
}

TEST(Cache, CpusStayCoherentUnderEvictionAndPrefetch) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(3, {200000, 200000, 100000, 100000}), mem, 11);
  std::vector<uint8_t> model(0x2000, 0);  // what every CPU must read
  Rng rng(99);
  for (int i = 0; i < 20000; ++i) {
    const uint64_t off = rng.Below(model.size());
    const auto cpu = static_cast<unsigned>(rng.Below(3));
    if (rng.Below(2) == 0) {
      const auto v = static_cast<uint8_t>(rng.Next());
      cache.Write(0x10000 + off, &v, 1, cpu);
      model[off] = v;
    } else {
      ASSERT_EQ(CpuByte(cache, 0x10000 + off, cpu), model[off]) << "step " << i;
    }
    if (i % 1000 == 999) cache.Clean(0x10000 + rng.Below(model.size()), 256);
  }
  cache.Clean(0x10000, model.size());
  std::vector<uint8_t> out(model.size());
  mem.Read(0x10000, out.data(), out.size());
  EXPECT_EQ(out, model) << "clean brings every CPU's data to memory";
}

// dcache_inval_poc (arch/arm64/mm/cache.S) cleans+invalidates the partial lines at either
// edge; DC CIVAC is broadcast, so another CPU's dirty bytes in those lines survive.
TEST(Cache, InvalidatePartialEdgesKeepAnotherCpusDirtyNeighbours) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(2), mem, 1);
  const uint8_t head = 0x5A;
  const uint8_t tail = 0xC3;
  cache.Write(0x10000, &head, 1, 1);  // byte 0 of line 0: outside the range below
  cache.Write(0x100BF, &tail, 1, 1);  // byte 63 of line 2: outside the range below
  std::array<uint8_t, 64> whole{};
  whole.fill(0x11);
  cache.Write(0x10040, whole.data(), whole.size(), 1);  // line 1: wholly inside the range
  cache.Invalidate(0x10020, 0x80);  // [0x10020, 0x100A0): half of line 0, line 1, half of 2
  EXPECT_EQ(MemByte(mem, 0x10000), 0x5A) << "edge line cleaned before it was invalidated";
  EXPECT_EQ(MemByte(mem, 0x100BF), 0xC3);
  EXPECT_EQ(MemByte(mem, 0x10040), 0) << "a whole line is invalidated without a clean";
  for (uint64_t a = 0x10000; a < 0x100C0; a += 64) EXPECT_FALSE(cache.IsCached(a)) << a;
  EXPECT_EQ(CpuByte(cache, 0x10000, 1), 0x5A);
  EXPECT_EQ(CpuByte(cache, 0x100BF, 0), 0xC3);
}

// DC IVAC / DC CIVAC by VA to the PoC are broadcast to every CPU of the inner-shareable
// domain (ARMv8 ARM, "Data cache maintenance instructions"; Xen's and Linux's cache
// maintenance rely on it): invalidating on CPU 0 removes CPU 1's copy.
TEST(Cache, InvalidateRemovesTheLineFromAnotherCpusL1) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(2), mem, 1);
  EXPECT_EQ(CpuByte(cache, 0x10100, 1), 0);
  ASSERT_TRUE(cache.IsCachedIn(CacheLevel::kL1, 0x10100, 1));
  cache.Invalidate(0x10100, 64);
  EXPECT_FALSE(cache.IsCached(0x10100));
  const uint8_t v = 0x99;
  cache.Write(0x10140, &v, 1, 1);  // dirty in CPU 1's L1: DC IVAC discards it
  cache.Invalidate(0x10140, 64);
  EXPECT_FALSE(cache.IsCached(0x10140));
  EXPECT_EQ(MemByte(mem, 0x10140), 0);
  EXPECT_EQ(cache.valid_lines(), 0u);
}

TEST(Cache, CoherentDeviceSeesAndUpdatesL1Data) {
  MachineMemory mem(OneBank());
  Cache cache(TwoLevels(2), mem, 1);
  const uint8_t v = 0x3C;
  cache.Write(0x10000, &v, 1, 0);  // Modified in CPU 0's L1
  uint8_t r = 0;
  cache.SnoopRead(0x10000, &r, 1);
  EXPECT_EQ(r, 0x3C);
  EXPECT_EQ(CpuByte(cache, 0x10040, 1), 0);  // clean in CPU 1's L1
  const std::array<uint8_t, 2> dev{0xD0, 0xD1};
  cache.SnoopWrite(0x1003F, dev.data(), dev.size());  // across both lines
  EXPECT_EQ(CpuByte(cache, 0x1003F, 0), 0xD0);
  EXPECT_EQ(CpuByte(cache, 0x10040, 1), 0xD1);
  EXPECT_EQ(CpuByte(cache, 0x10000, 1), 0x3C);
  EXPECT_EQ(MemByte(mem, 0x10040), 0xD1);
}

TEST(Cache, SameSeedSameResultsWithPrefetchAndEvictions) {
  auto run = [](uint64_t seed) {
    MachineMemory mem(OneBank());
    Cache cache(TwoLevels(2, {300000, 300000, 200000, 200000}), mem, seed);
    std::vector<uint8_t> out(0x4000);
    for (uint64_t a = 0x10000; a < 0x14000; a += 48) {
      const auto v = static_cast<uint8_t>(a >> 4);
      cache.Write(a, &v, 1, static_cast<unsigned>(a >> 6) & 1);
      (void)CpuByte(cache, a + 0x800, static_cast<unsigned>(a >> 7) & 1);
    }
    cache.Invalidate(0x12010, 0x1000);
    mem.Read(0x10000, out.data(), out.size());
    const CacheStats s = cache.stats();
    out.push_back(static_cast<uint8_t>(cache.valid_lines()));
    out.push_back(static_cast<uint8_t>(s.prefetches));
    out.push_back(static_cast<uint8_t>(s.random_evictions));
    out.push_back(static_cast<uint8_t>(s.write_backs));
    return out;
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
}

// A digest of everything the model shows after a long random mix of every operation, on
// one- and two-level hierarchies with frequent random evictions and prefetches. The pinned
// values are the model's before its speed-ups: an optimisation must keep every random
// draw, every eviction and every byte (the detection results of a seed depend on them).
uint64_t ModelDigest(bool two_levels, uint64_t seed) {
  std::vector<v1::MemoryBank> banks(2);
  banks[0].set_base(0x100000);
  banks[0].set_size(0x40000);
  banks[1].set_base(0x800000);
  banks[1].set_size(0x10000);
  MachineMemory mem(banks);
  v1::Board b;
  b.set_cpus(two_levels ? 4 : 1);
  v1::CacheGeometry* shared = b.mutable_cache();
  shared->set_line_size(64);
  shared->set_sets(32);
  shared->set_ways(16);
  shared->set_eviction_ppm(20000);
  shared->set_prefetch_ppm(100000);
  if (two_levels) {
    v1::CacheGeometry* l1 = b.mutable_l1();
    l1->set_line_size(64);
    l1->set_sets(8);
    l1->set_ways(4);
    l1->set_eviction_ppm(30000);
    l1->set_prefetch_ppm(150000);
  }
  Cache cache(b, mem, seed);
  Rng ops(seed ^ 0xD16E57);
  uint64_t digest = 0;
  const auto mix = [&](uint64_t v) { digest = (digest ^ v) * 0x100000001B3ULL + 0x9E3779B9; };
  std::vector<uint8_t> buf(0x3000);
  for (int i = 0; i < 4000; ++i) {
    const bool high = ops.Below(8) == 0;
    const uint64_t base = high ? 0x800000 : 0x100000;
    const uint64_t span = high ? 0x10000 : 0x40000;
    const uint64_t len = 1 + ops.Below(ops.Below(4) == 0 ? 0x3000 : 200);
    const uint64_t addr = base + ops.Below(span - len);
    const auto cpu = static_cast<unsigned>(ops.Below(cache.cpus()));
    switch (ops.Below(7)) {
      case 0:
      case 1:
        for (uint64_t k = 0; k < len; ++k) buf[k] = static_cast<uint8_t>(ops.Next());
        cache.Write(addr, buf.data(), len, cpu);
        break;
      case 2:
        cache.Read(addr, buf.data(), len, cpu);
        for (uint64_t k = 0; k < len; ++k) mix(buf[k]);
        break;
      case 3:
        cache.Clean(addr, len);
        break;
      case 4:
        if (ops.Below(2) == 0) {
          cache.Invalidate(addr, len);
        } else {
          cache.CleanInvalidate(addr, len);
        }
        break;
      case 5:
        cache.SnoopRead(addr, buf.data(), len);
        for (uint64_t k = 0; k < len; ++k) mix(buf[k]);
        break;
      default:
        for (uint64_t k = 0; k < len; ++k) buf[k] = static_cast<uint8_t>(ops.Next());
        if (ops.Below(2) == 0) {
          cache.SnoopWrite(addr, buf.data(), len);
        } else {
          mem.Write(addr, buf.data(), len);  // a non-coherent device write
        }
        break;
    }
    mix(cache.IsCached(addr));
  }
  mix(cache.valid_lines());
  mix(cache.dirty_lines());
  mix(cache.stats().write_backs);
  mix(cache.stats().random_evictions);
  mix(cache.stats().prefetches);
  for (const v1::MemoryBank& bank : banks) {
    std::vector<uint8_t> all(bank.size());
    mem.Read(bank.base(), all.data(), all.size());
    for (uint8_t v : all) mix(v);
  }
  return digest;
}

TEST(Cache, ModelBehaviourIsPinned) {
  EXPECT_EQ(ModelDigest(false, 1), 7409704095480677697u);
  EXPECT_EQ(ModelDigest(false, 2), 12735632416777842703u);
  EXPECT_EQ(ModelDigest(true, 1), 12417993047276826439u);
  EXPECT_EQ(ModelDigest(true, 2), 16615666474611541872u);
}

// The caches' write-back path (non-temporal stores for whole aligned lines on x86) must
// leave memory exactly as Write does, and refuse what Write refuses.
TEST(MachineMemory, WriteBackWritesWhatWriteWrites) {
  MachineMemory a(OneBank());
  MachineMemory b(OneBank());
  Rng rng(5);
  std::vector<uint8_t> src(256);
  for (uint8_t& v : src) v = static_cast<uint8_t>(rng.Next());
  const std::pair<uint64_t, uint64_t> ranges[] = {
      {0x10000, 64}, {0x10fc0, 64}, {0x10040, 64},  {0x10ff0, 64},   // aligned, last, ...
      {0x11008, 64}, {0x12000, 32}, {0x13000, 128}, {0x1ffc0, 64}};  // ... unaligned, sizes
  for (const auto& [addr, len] : ranges) {
    a.Write(addr, src.data(), len);
    b.WriteBack(addr, src.data(), len);
    b.FinishWriteBacks();
  }
  std::vector<uint8_t> want(0x10000), got(0x10000);
  a.Read(0x10000, want.data(), want.size());
  b.Read(0x10000, got.data(), got.size());
  EXPECT_EQ(got, want);
  EXPECT_THROW(b.WriteBack(0x20000, src.data(), 64), SimError);
  EXPECT_THROW(b.WriteBack(0xffc0, src.data(), 64), SimError);
}

}  // namespace
}  // namespace dmahil::sim
