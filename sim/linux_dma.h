// The dom0 Linux DMA API of the virtual board (docs/architecture.md §7): swiotlb-xen map/unmap/sync
// per page, dma_capable, bouncing through the swiotlb pool, arch_sync_dma_for_device/cpu
// for local pages and GNTTABOP_cache_flush for foreign ones.
//
// Follows Linux 6.1: drivers/xen/swiotlb-xen.c (xen_swiotlb_map_page, _unmap_page,
// _sync_single_for_cpu/_device, xen_phys_to_dma, is_xen_swiotlb_buffer),
// arch/arm/xen/mm.c (xen_dma_sync_for_cpu/_device, dma_cache_maint),
// arch/arm64/mm/dma-mapping.c (arch_sync_dma_for_device: clean; _for_cpu: invalidate
// unless DMA_TO_DEVICE), kernel/dma/swiotlb.c (swiotlb_tbl_map_single always bounces
// to the device; unmap bounces back for FROM_DEVICE/BIDIRECTIONAL), kernel/dma/direct.c
// (the path taken when the dma-ops-bypass-xen fault is on), include/linux/dma-direct.h
// (dma_capable, phys_to_dma through dma-ranges), arch/arm/include/asm/xen/page.h
// (pfn_to_bfn through the p2m; bfn_to_pfn is the identity on Arm).
// Each catalogue fault changes exactly the step it names (sim/faults.cc).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/fixture.pb.h"
#include "sim/cache.h"
#include "sim/faults.h"
#include "sim/xen.h"

namespace dmahil::sim {

inline constexpr uint64_t kDmaMappingError = ~uint64_t{0};  // == dmahil::kNoTranslation
inline constexpr uint64_t kIoTlbSize = 2048;                // IO_TLB_SIZE: swiotlb slot, bytes
inline constexpr uint64_t kMaxMapping = 128 * kIoTlbSize;   // IO_TLB_SEGSIZE slots: 256 KiB

/// One streaming mapping of one range inside a 4 KiB page.
struct PageMapping {
  uint64_t dma_addr = kDmaMappingError;  // what the device must use (dma_addr_t)
  bool bounced = false;                  // dma_addr is in the swiotlb pool
};

class LinuxDma {
 public:
  /// board: validated board (dma-ranges, mask, coherency, swiotlb pool, dom0 RAM).
  LinuxDma(const v1::Board& board, Xen& xen, Cache& cache, const FaultSet& faults);

  /// dma_set_mask(): bits in [32, 64]. Throws SimError(kInvalidArgument) otherwise.
  void SetMask(uint32_t bits);
  uint64_t mask() const { return mask_; }
  uint32_t mask_bits() const { return mask_bits_; }

  /// dom0 Linux's pfn_valid() of the 4 KiB frame pfn, as Linux 6.1's generic one with
  /// CONFIG_SPARSEMEM (include/linux/mmzone.h): true when the memory section holding pfn is
  /// present, i.e. holds any dom0 RAM (a dom0_ram bank; the boot memory is all in early
  /// sections, valid across the whole section span whatever the bank edges). Sections are
  /// 1 << SECTION_SIZE_BITS bytes: 27 (128 MiB) with 4 KiB dom0 pages, 29 (512 MiB) with
  /// 64 KiB pages (arch/arm64/include/asm/sparsemem.h); addresses beyond 48 physical bits
  /// (MAX_PHYSMEM_BITS = CONFIG_ARM64_PA_BITS = 48) are never valid. The board validator
  /// refuses domU RAM in a section with dom0 RAM (common/validate.h), so a foreign frame
  /// is never pfn_valid() in dom0.
  bool PfnValid(uint64_t pfn) const;
  /// pfn_to_bfn(): the mfn of a foreign page mapped at pfn, else pfn.
  uint64_t PfnToBfn(uint64_t pfn) const;
  /// phys_to_dma() / dma_to_phys() through the board's dma-ranges (identity if none).
  /// An address outside every range maps to kDmaMappingError.
  uint64_t PhysToDma(uint64_t phys) const;
  uint64_t DmaToPhys(uint64_t dma) const;
  /// What swiotlb-xen must return for dom0 physical address phys: phys_to_dma of the
  /// bus frame (xen_phys_to_dma without any fault). The model's tests compare against it;
  /// the controller's audit (controller/run/oracle.cc) computes the same from the board.
  uint64_t ExpectedDma(uint64_t phys) const;
  /// Whether the device may write [dma, dma + size) of a mapping of dom0 physical address
  /// phys (size > 0), with the current mask: the one rule of the engine's write fence
  /// (docs/architecture.md §12), as dmahil.ko's seg_write_safe() applies it on a real
  /// board. Computed from the model's p2m, never from the mapping path under test: dma
  /// must be ExpectedDma(phys) (drivers/xen/swiotlb-xen.c xen_phys_to_dma: phys_to_dma of
  /// the bus frame, include/linux/dma-direct.h), or, for a bounced mapping, an address
  /// whose dma_to_phys of the first and last byte lies in the swiotlb pool
  /// (is_swiotlb_buffer); and its last byte must be within dma_capable's limit
  /// (min(mask, end of dma-ranges)). False for kDmaMappingError.
  bool DeviceMayWrite(uint64_t phys, uint64_t dma, uint64_t size) const;

  /// dma_map_page(dev, page, offset, size, dir) for [phys, phys + size) of dom0, size
  /// 1..256 KiB; the range may cross 4 KiB Xen pages (pfn-contiguous, as a scatterlist
  /// entry is): swiotlb-xen bounces it when their bus frames are not contiguous
  /// (range_straddles_page_boundary). Returns kDmaMappingError in dma_addr when it cannot
  /// be mapped (the swiotlb pool is full or the bounce address is not DMA-capable).
  /// Throws SimError(kInvalidArgument) for a size out of range.
  PageMapping MapPage(uint64_t phys, uint64_t size, v1::DmaDirection dir);
  /// dma_unmap_page(dev, dma_addr, size, dir).
  void UnmapPage(uint64_t dma_addr, uint64_t size, v1::DmaDirection dir);
  /// dma_sync_single_for_cpu / _for_device.
  void SyncForCpu(uint64_t dma_addr, uint64_t size, v1::DmaDirection dir);
  void SyncForDevice(uint64_t dma_addr, uint64_t size, v1::DmaDirection dir);

  /// gntdev's set_foreign_p2m_mapping / clear_foreign_p2m_mapping (arch/arm/xen/p2m.c):
  /// dom0 Linux learns that pfn now maps machine frame mfn, and forgets it on unmap.
  void SetForeignP2m(uint64_t pfn, uint64_t mfn);
  void ClearForeignP2m(uint64_t pfn);

  /// dom0 page allocator: count consecutive free dom0 pfns (4 KiB frames) outside the
  /// balloon and swiotlb regions, the first aligned to a Linux page (4 or 64 KiB), every
  /// one allowed by placement for the board's device with a `mask_bits` DMA mask (0: the
  /// board's; common/placement.h) (alloc_pages of an order, then split). Throws
  /// SimError(kResourceExhausted) if there is no such run; nothing is allocated then.
  std::vector<uint64_t> AllocPages(uint32_t count, v1::Placement placement, uint32_t mask_bits = 0);
  void FreePage(uint64_t pfn);
  /// count consecutive ballooned pfns to map grants at, the first aligned to a Linux page,
  /// so a 64 KiB Linux page holds 16 consecutive 4 KiB grants (gnttab_alloc_pages and
  /// gnttab_foreach_grant_in_range). kResourceExhausted if none.
  std::vector<uint64_t> AllocBallooned(uint32_t count);
  void FreeBallooned(uint64_t pfn);

  /// CPU load/store by dom0 physical address, through the stage-2 (p2m) and the cache.
  /// Throws SimError(kOutOfRange) for an unmapped pfn.
  void CpuRead(uint64_t phys, uint8_t* dst, uint64_t len);
  void CpuWrite(uint64_t phys, const uint8_t* src, uint64_t len);
  /// Translates dom0 phys to a machine address (stage-2). kOutOfRange if unmapped.
  uint64_t Dom0ToMachine(uint64_t phys) const;

  uint64_t swiotlb_slots_used() const { return slots_used_.size(); }

 private:
  struct Bounce {
    uint64_t orig_phys;
    uint64_t size;
  };
  bool PfnValidDma(uint64_t dma) const;
  bool StraddlesPageBoundary(uint64_t phys,
                             uint64_t size) const;  // pfn_valid(PFN_DOWN(dma_to_phys(dma)))
  bool DmaCapable(uint64_t dma, uint64_t size) const;
  uint64_t XenPhysToDma(uint64_t phys) const;
  uint64_t XenDmaToPhys(uint64_t dma) const;
  bool IsSwiotlbBuffer(uint64_t phys) const;
  void ArchSyncForDevice(uint64_t phys, uint64_t size);
  void ArchSyncForCpu(uint64_t phys, uint64_t size, v1::DmaDirection dir);
  void DmaCacheMaint(uint64_t handle, uint64_t size, uint32_t op);
  // from_sync: called by dma_sync_single_for_device (not by map).
  void XenSyncForDevice(uint64_t dma, uint64_t size, v1::DmaDirection dir, uint64_t phys,
                        bool from_sync);
  void XenSyncForCpu(uint64_t dma, uint64_t size, v1::DmaDirection dir);
  uint64_t SwiotlbMap(uint64_t orig_phys, uint64_t size);  // tlb phys or kDmaMappingError
  void SwiotlbUnmap(uint64_t tlb_phys, uint64_t size, v1::DmaDirection dir);
  void Copy(uint64_t dst_phys, uint64_t src_phys, uint64_t size);
  PageMapping DirectMap(uint64_t phys, uint64_t size, v1::DmaDirection dir);
  void DirectUnmap(uint64_t dma, uint64_t size, v1::DmaDirection dir);

  v1::Board board_;
  Xen& xen_;
  Cache& cache_;
  FaultSet faults_;
  uint32_t mask_bits_ = 64;
  uint64_t mask_ = ~uint64_t{0};
  std::map<uint64_t, Bounce> bounces_;  // tlb phys -> original
  std::set<uint64_t> slots_used_;       // slot indices in use
  std::vector<uint64_t> FindRun(const v1::MemoryBank& bank, uint32_t count, v1::Placement placement,
                                uint32_t mask_bits, const std::set<uint64_t>& used) const;
  bool Reserved(uint64_t pfn) const;  // in the balloon or the swiotlb pool
  std::set<uint64_t> pages_used_;     // dom0 pfns handed out by AllocPages
  // double-map-wrong-frame: a reverse bfn -> pfn map that keeps the first pfn a frame was
  // ever mapped at (not unique once a frame is mapped twice, and never updated on unmap).
  std::map<uint64_t, uint64_t> first_pfn_of_bfn_;
  std::set<uint64_t> balloon_used_;  // ballooned pfns handed out
};

}  // namespace dmahil::sim
