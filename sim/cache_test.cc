#include "sim/cache.h"

#include <array>
#include <vector>

#include <gtest/gtest.h>

#include "sim/error.h"

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

}  // namespace
}  // namespace dmahil::sim
