// One virtual board (docs/architecture.md §7): machine RAM, the CPU cache, Xen, dom0's Linux DMA
// API and the DMA engine's bus view, built from a board file, a fault set and a seed. The same seed
// and the same sequence of calls give the same results, bit for bit. Not thread-safe: callers
// serialise with mutex().
#pragma once

#include <cstdint>
#include <mutex>

#include "dmahil/v1/board.pb.h"
#include "sim/cache.h"
#include "sim/device_view.h"
#include "sim/faults.h"
#include "sim/linux_dma.h"
#include "sim/memory.h"
#include "sim/xen.h"

namespace dmahil::sim {

class VirtualBoard {
 public:
  /// board: a validated board with a xen layout (a virtual one); faults: the injected revision.
  VirtualBoard(const v1::Board& board, FaultSet faults, uint64_t seed);
  VirtualBoard(const VirtualBoard&) = delete;
  VirtualBoard& operator=(const VirtualBoard&) = delete;

  const v1::Board& board() const { return board_; }
  const FaultSet& faults() const { return faults_; }
  MachineMemory& memory() { return memory_; }
  Cache& cache() { return cache_; }
  Xen& xen() { return xen_; }
  LinuxDma& dma() { return dma_; }
  DeviceView& device() { return device_; }
  std::mutex& mutex() { return mutex_; }

  /// CPU access by a domain's guest-physical address (through its p2m and the caches of
  /// the CPU the domain runs on).
  /// Throws SimError(kOutOfRange) for an unmapped frame; nothing is accessed then.
  void CpuRead(uint32_t domid, uint64_t gpa, uint8_t* dst, uint64_t len);
  void CpuWrite(uint32_t domid, uint64_t gpa, const uint8_t* src, uint64_t len);
  /// DC CIVAC / DC CVAC by a domain's address range (EL0 cache maintenance).
  void CpuCleanInvalidate(uint32_t domid, uint64_t gpa, uint64_t len);

 private:
  // fn(machine, done, n) for each run of [gpa, gpa + len) whose frames are contiguous in
  // machine memory and inside one RAM bank, in order (done: bytes before the run). Throws
  // SimError(kOutOfRange) at the first unmapped frame, after the runs before it.
  template <typename Fn>
  void ForEachMachineRun(uint32_t domid, uint64_t gpa, uint64_t len, Fn&& fn) const;
  unsigned CpuOf(uint32_t domid) const;  // dom0 runs on CPU 0, the domU on CPU 1 % cpus

  v1::Board board_;
  FaultSet faults_;
  MachineMemory memory_;
  Cache cache_;
  Xen xen_;
  LinuxDma dma_;
  DeviceView device_;
  std::mutex mutex_;
};

}  // namespace dmahil::sim
