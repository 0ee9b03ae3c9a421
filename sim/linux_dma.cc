#include "sim/linux_dma.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/dma_ranges.h"
#include "common/placement.h"
#include "common/validate.h"
#include "sim/chunks.h"
#include "sim/error.h"

namespace dmahil::sim {
namespace {

constexpr uint64_t kPageMask = kXenPageSize - 1;

bool InBank(const v1::MemoryBank& b, uint64_t addr) {
  return addr >= b.base() && addr - b.base() < b.size();
}

bool ToCpu(v1::DmaDirection dir) {
  return dir == v1::DMA_FROM_DEVICE || dir == v1::DMA_BIDIRECTIONAL;
}
bool ToDevice(v1::DmaDirection dir) {
  return dir == v1::DMA_TO_DEVICE || dir == v1::DMA_BIDIRECTIONAL;
}

}  // namespace

LinuxDma::LinuxDma(const v1::Board& board, Xen& xen, Cache& cache, const FaultSet& faults)
    : board_(board), xen_(xen), cache_(cache), faults_(faults) {
  SetMask(board_.dma().mask_bits());
}

void LinuxDma::SetMask(uint32_t bits) {
  if (bits < 32 || bits > 64)
    throw SimError(ErrorCode::kInvalidArgument,
                   fmt::format("dma mask of {} bits: must be 32..64", bits));
  mask_bits_ = bits;
  mask_ = DmaMask(bits);
}

bool LinuxDma::PfnValid(uint64_t pfn) const {
  constexpr unsigned kMaxPhysmemBits = 48;
  if (pfn >= (uint64_t{1} << (kMaxPhysmemBits - kXenPageShift))) return false;
  const uint64_t section = MemorySectionBytes(board_.linux_page_size());
  const uint64_t start = (pfn << kXenPageShift) / section * section;
  return std::any_of(
      board_.xen().dom0_ram().begin(), board_.xen().dom0_ram().end(), [&](const v1::MemoryBank& b) {
        return b.size() != 0 && b.base() < start + section && start < b.base() + b.size();
      });
}

uint64_t LinuxDma::PfnToBfn(uint64_t pfn) const {
  const std::optional<uint64_t> mfn = xen_.P2m(kDom0, pfn);
  return mfn ? *mfn : pfn;
}

uint64_t LinuxDma::PhysToDma(uint64_t phys) const { return dmahil::PhysToDma(board_.dma(), phys); }

uint64_t LinuxDma::DmaToPhys(uint64_t dma) const { return dmahil::DmaToPhys(board_.dma(), dma); }

uint64_t LinuxDma::ExpectedDma(uint64_t phys) const {
  return PhysToDma((PfnToBfn(phys >> kXenPageShift) << kXenPageShift) | (phys & kPageMask));
}

bool LinuxDma::DeviceMayWrite(uint64_t phys, uint64_t dma, uint64_t size) const {
  if (size == 0 || dma == kDmaMappingError || dma + (size - 1) < dma || !DmaCapable(dma, size))
    return false;
  if (dma == ExpectedDma(phys)) return true;
  const uint64_t first = DmaToPhys(dma);
  const uint64_t last = DmaToPhys(dma + (size - 1));
  return first != kDmaMappingError && last != kDmaMappingError && IsSwiotlbBuffer(first) &&
         IsSwiotlbBuffer(last);
}

uint64_t LinuxDma::XenPhysToDma(uint64_t phys) const {
  uint64_t bus = (PfnToBfn(phys >> kXenPageShift) << kXenPageShift) | (phys & kPageMask);
  if (faults_.Has(FaultId::kGrant64kOffset)) {
    // The bus frame of the Linux page's first Xen frame plus the offset in the Linux page.
    const uint64_t linux_mask = std::max<uint64_t>(board_.linux_page_size(), kXenPageSize) - 1;
    bus = (PfnToBfn((phys & ~linux_mask) >> kXenPageShift) << kXenPageShift) | (phys & linux_mask);
  }
  if (faults_.Has(FaultId::kBusAddrNoDmaOffset)) return bus;  // phys_to_dma() not applied
  return PhysToDma(bus);
}

uint64_t LinuxDma::XenDmaToPhys(uint64_t dma) const {
  if (faults_.Has(FaultId::kBusAddrNoDmaOffset)) return dma;
  return DmaToPhys(dma);  // bfn_to_pfn() is the identity on Arm
}

bool LinuxDma::PfnValidDma(uint64_t dma) const {
  const uint64_t phys = faults_.Has(FaultId::kBusAddrNoDmaOffset) ? dma : DmaToPhys(dma);
  return phys != kDmaMappingError && PfnValid(phys >> kXenPageShift);
}

bool LinuxDma::DmaCapable(uint64_t dma, uint64_t size) const {
  if (dma == kDmaMappingError) return false;
  return dma + size - 1 <= DmaLimit(board_.dma(), mask_bits_);
}

bool LinuxDma::IsSwiotlbBuffer(uint64_t phys) const {
  return InBank(board_.xen().swiotlb_pool(), phys);
}

uint64_t LinuxDma::Dom0ToMachine(uint64_t phys) const {
  const std::optional<uint64_t> mfn = xen_.P2m(kDom0, phys >> kXenPageShift);
  if (!mfn)
    throw SimError(ErrorCode::kOutOfRange,
                   fmt::format("dom0 pfn {:#x} is not mapped", phys >> kXenPageShift));
  return (*mfn << kXenPageShift) | (phys & kPageMask);
}

void LinuxDma::CpuRead(uint64_t phys, uint8_t* dst, uint64_t len) {
  ForEachChunk(phys, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    cache_.Read(Dom0ToMachine(at), dst + done, n);
  });
}

void LinuxDma::CpuWrite(uint64_t phys, const uint8_t* src, uint64_t len) {
  ForEachChunk(phys, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    cache_.Write(Dom0ToMachine(at), src + done, n);
  });
}

void LinuxDma::Copy(uint64_t dst_phys, uint64_t src_phys, uint64_t size) {
  std::vector<uint8_t> tmp(size);
  CpuRead(src_phys, tmp.data(), size);
  CpuWrite(dst_phys, tmp.data(), size);
}

// arch_sync_dma_for_device(): dcache_clean_poc on the linear-map VA, i.e. through
// dom0's stage-2 translation to the machine lines.
void LinuxDma::ArchSyncForDevice(uint64_t phys, uint64_t size) {
  ForEachChunk(phys, size, kXenPageSize, [&](uint64_t at, uint64_t, uint64_t n) {
    const std::optional<uint64_t> mfn = xen_.P2m(kDom0, at >> kXenPageShift);
    if (mfn) cache_.Clean((*mfn << kXenPageShift) | (at & kPageMask), n);
  });
}

// arch_sync_dma_for_cpu(): nothing for DMA_TO_DEVICE, else dcache_inval_poc.
void LinuxDma::ArchSyncForCpu(uint64_t phys, uint64_t size, v1::DmaDirection dir) {
  if (dir == v1::DMA_TO_DEVICE) return;
  ForEachChunk(phys, size, kXenPageSize, [&](uint64_t at, uint64_t, uint64_t n) {
    const std::optional<uint64_t> mfn = xen_.P2m(kDom0, at >> kXenPageShift);
    if (mfn) cache_.Invalidate((*mfn << kXenPageShift) | (at & kPageMask), n);
  });
}

// arch/arm/xen/mm.c dma_cache_maint(): one GNTTABOP_cache_flush per Xen page, by bus
// (machine) address; the return value is ignored, as Linux does.
void LinuxDma::DmaCacheMaint(uint64_t handle, uint64_t size, uint32_t op) {
  uint32_t offset = static_cast<uint32_t>(handle & kPageMask);
  handle &= ~kPageMask;
  while (size > 0) {
    const uint64_t len = std::min<uint64_t>(size, kXenPageSize - offset);
    const uint64_t addr = faults_.Has(FaultId::kBusAddrNoDmaOffset) ? handle : DmaToPhys(handle);
    (void)xen_.CacheFlush(addr, offset, static_cast<uint32_t>(len), op);
    offset = 0;
    handle += kXenPageSize;
    size -= len;
  }
}

void LinuxDma::XenSyncForDevice(uint64_t dma, uint64_t size, v1::DmaDirection dir, uint64_t phys,
                                bool from_sync) {
  if (from_sync && faults_.Has(FaultId::kSyncForDeviceCpuOp)) {
    XenSyncForCpu(dma, size, dir);
    return;
  }
  if (faults_.Has(FaultId::kCacheFlushLocalAddr)) dma = PhysToDma(phys);  // dom0 pfn, not bfn
  DmaCacheMaint(dma, size, dir == v1::DMA_FROM_DEVICE ? kGnttabCacheInval : kGnttabCacheClean);
}

void LinuxDma::XenSyncForCpu(uint64_t dma, uint64_t size, v1::DmaDirection dir) {
  if (dir != v1::DMA_TO_DEVICE) DmaCacheMaint(dma, size, kGnttabCacheInval);
}

uint64_t LinuxDma::SwiotlbMap(uint64_t orig_phys, uint64_t size) {
  const v1::MemoryBank& pool = board_.xen().swiotlb_pool();
  const uint64_t nslots = (size + kIoTlbSize - 1) / kIoTlbSize;
  const uint64_t total = pool.size() / kIoTlbSize;
  for (uint64_t first = 0; first + nslots <= total; ++first) {
    bool free = true;
    for (uint64_t s = first; s < first + nslots && free; ++s) free = slots_used_.count(s) == 0;
    if (!free) continue;
    for (uint64_t s = first; s < first + nslots; ++s) slots_used_.insert(s);
    const uint64_t tlb = pool.base() + first * kIoTlbSize;
    bounces_[tlb] = Bounce{orig_phys, size};
    Copy(tlb, orig_phys, size);  // swiotlb_bounce(DMA_TO_DEVICE), unconditional since 6.0
    return tlb;
  }
  return kDmaMappingError;  // "swiotlb buffer is full"
}

void LinuxDma::SwiotlbUnmap(uint64_t tlb_phys, uint64_t size, v1::DmaDirection dir) {
  auto it = bounces_.find(tlb_phys);
  if (it == bounces_.end())
    throw SimError(ErrorCode::kNotFound, fmt::format("no swiotlb bounce at {:#x}", tlb_phys));
  if (ToCpu(dir) && !faults_.Has(FaultId::kBounceNoCopyBack))
    Copy(it->second.orig_phys, tlb_phys, std::min(size, it->second.size));
  const uint64_t first = (tlb_phys - board_.xen().swiotlb_pool().base()) / kIoTlbSize;
  const uint64_t nslots = (it->second.size + kIoTlbSize - 1) / kIoTlbSize;
  for (uint64_t s = first; s < first + nslots; ++s) slots_used_.erase(s);
  bounces_.erase(it);
}

bool LinuxDma::StraddlesPageBoundary(uint64_t phys, uint64_t size) const {
  const uint64_t first = phys >> kXenPageShift;
  const uint64_t bfn = PfnToBfn(first);
  for (uint64_t pfn = first + 1; pfn <= (phys + size - 1) >> kXenPageShift; ++pfn)
    if (PfnToBfn(pfn) != bfn + (pfn - first)) return true;
  return false;
}

PageMapping LinuxDma::MapPage(uint64_t phys, uint64_t size, v1::DmaDirection dir) {
  if (size == 0 || size > kMaxMapping)
    throw SimError(
        ErrorCode::kInvalidArgument,
        fmt::format("map of {:#x}+{:#x}: size must be 1..{:#x}", phys, size, kMaxMapping));
  if (faults_.Has(FaultId::kDmaOpsBypassXen)) return DirectMap(phys, size, dir);
  const bool coherent = board_.dma().coherent();
  uint64_t dev_addr = XenPhysToDma(phys);
  bool bounced = false;
  const bool capable = faults_.Has(FaultId::kNoBounceAboveMask) || DmaCapable(dev_addr, size);
  if (!capable || StraddlesPageBoundary(phys, size)) {
    const uint64_t tlb = SwiotlbMap(phys, size);
    if (tlb == kDmaMappingError) return PageMapping{};
    phys = tlb;
    dev_addr = XenPhysToDma(tlb);
    bounced = true;
    if (!DmaCapable(dev_addr, size)) {
      SwiotlbUnmap(tlb, size, v1::DMA_TO_DEVICE);
      return PageMapping{};
    }
  }
  if (!coherent) {
    if (PfnValidDma(dev_addr)) {
      ArchSyncForDevice(phys, size);
    } else {
      XenSyncForDevice(dev_addr, size, dir, phys, /*from_sync=*/false);
    }
  }
  return PageMapping{dev_addr, bounced};
}

void LinuxDma::UnmapPage(uint64_t dma_addr, uint64_t size, v1::DmaDirection dir) {
  if (faults_.Has(FaultId::kDmaOpsBypassXen)) {
    DirectUnmap(dma_addr, size, dir);
    return;
  }
  const uint64_t paddr = XenDmaToPhys(dma_addr);
  if (!board_.dma().coherent()) {
    if (PfnValidDma(dma_addr)) {
      ArchSyncForCpu(paddr, size, dir);
    } else if (faults_.Has(FaultId::kDoubleMapWrongFrame) &&
               first_pfn_of_bfn_.count(paddr >> kXenPageShift) != 0) {
      // Resolves the bus frame to the first pfn it was mapped at and invalidates by that
      // VA: right while that mapping lives, nothing (or another frame) once it is gone.
      const uint64_t pfn = first_pfn_of_bfn_.at(paddr >> kXenPageShift);
      ArchSyncForCpu((pfn << kXenPageShift) | (paddr & kPageMask), size, dir);
    } else if (!faults_.Has(FaultId::kUnmapNoInvalidateForeign)) {
      XenSyncForCpu(dma_addr, size, dir);
    }
  }
  if (PfnValid(paddr >> kXenPageShift) && IsSwiotlbBuffer(paddr)) SwiotlbUnmap(paddr, size, dir);
}

void LinuxDma::SyncForCpu(uint64_t dma_addr, uint64_t size, v1::DmaDirection dir) {
  const bool bypass = faults_.Has(FaultId::kDmaOpsBypassXen);
  const uint64_t paddr = bypass ? DmaToPhys(dma_addr) : XenDmaToPhys(dma_addr);
  if (!board_.dma().coherent()) {
    if (bypass || PfnValidDma(dma_addr)) {
      ArchSyncForCpu(paddr, size, dir);
    } else {
      XenSyncForCpu(dma_addr, size, dir);
    }
  }
  auto it = bounces_.find(paddr);
  if (it != bounces_.end() && ToCpu(dir) && PfnValid(paddr >> kXenPageShift))
    Copy(it->second.orig_phys, paddr, std::min(size, it->second.size));
}

void LinuxDma::SyncForDevice(uint64_t dma_addr, uint64_t size, v1::DmaDirection dir) {
  const bool bypass = faults_.Has(FaultId::kDmaOpsBypassXen);
  const uint64_t paddr = bypass ? DmaToPhys(dma_addr) : XenDmaToPhys(dma_addr);
  auto it = bounces_.find(paddr);
  if (it != bounces_.end() && ToDevice(dir) && PfnValid(paddr >> kXenPageShift))
    Copy(paddr, it->second.orig_phys, std::min(size, it->second.size));
  if (!board_.dma().coherent()) {
    if (bypass || PfnValidDma(dma_addr)) {
      ArchSyncForDevice(paddr, size);
    } else {
      XenSyncForDevice(dma_addr, size, dir, paddr, /*from_sync=*/true);
    }
  }
}

PageMapping LinuxDma::DirectMap(uint64_t phys, uint64_t size, v1::DmaDirection dir) {
  (void)dir;  // arm64 cleans for every direction
  const bool coherent = board_.dma().coherent();
  const uint64_t dma = PhysToDma(phys);  // the pfn, not the bus frame
  if (DmaCapable(dma, size)) {
    if (!coherent) ArchSyncForDevice(phys, size);
    return PageMapping{dma, false};
  }
  const uint64_t tlb = SwiotlbMap(phys, size);
  if (tlb == kDmaMappingError) return PageMapping{};
  const uint64_t tlb_dma = PhysToDma(tlb);
  if (!DmaCapable(tlb_dma, size)) {
    SwiotlbUnmap(tlb, size, v1::DMA_TO_DEVICE);
    return PageMapping{};
  }
  if (!coherent) ArchSyncForDevice(tlb, size);
  return PageMapping{tlb_dma, true};
}

void LinuxDma::DirectUnmap(uint64_t dma, uint64_t size, v1::DmaDirection dir) {
  const uint64_t phys = DmaToPhys(dma);
  if (!board_.dma().coherent()) ArchSyncForCpu(phys, size, dir);
  if (IsSwiotlbBuffer(phys)) SwiotlbUnmap(phys, size, dir);
}

void LinuxDma::SetForeignP2m(uint64_t pfn, uint64_t mfn) { first_pfn_of_bfn_.emplace(mfn, pfn); }

void LinuxDma::ClearForeignP2m(uint64_t pfn) {
  (void)pfn;  // Linux drops its p2m entry; the faulty reverse map keeps its stale one.
}

bool LinuxDma::Reserved(uint64_t pfn) const {
  const uint64_t a = pfn << kXenPageShift;
  return InBank(board_.xen().grant_map_region(), a) || InBank(board_.xen().swiotlb_pool(), a);
}

std::vector<uint64_t> LinuxDma::FindRun(const v1::MemoryBank& bank, uint32_t count,
                                        v1::Placement placement, uint32_t mask_bits,
                                        const std::set<uint64_t>& used) const {
  const uint64_t align =
      std::max<uint64_t>(board_.linux_page_size(), kXenPageSize) >> kXenPageShift;
  const uint64_t first = ((bank.base() >> kXenPageShift) + align - 1) / align * align;
  const uint64_t end = (bank.base() + bank.size()) >> kXenPageShift;
  const bool in_balloon = InBank(board_.xen().grant_map_region(), bank.base());
  for (uint64_t start = first; start + count <= end; start += align) {
    uint64_t bad = 0;
    for (uint64_t pfn = start; pfn < start + count && bad == 0; ++pfn)
      if (used.count(pfn) != 0 || (!in_balloon && Reserved(pfn)) ||
          !PlacementAllows(placement, board_.dma(), mask_bits, pfn << kXenPageShift))
        bad = pfn;
    if (bad != 0) {
      start = bad / align * align;  // the loop adds align: next candidate past the clash
      continue;
    }
    std::vector<uint64_t> run(count);
    for (uint32_t i = 0; i < count; ++i) run[i] = start + i;
    return run;
  }
  return {};
}

std::vector<uint64_t> LinuxDma::AllocPages(uint32_t count, v1::Placement placement,
                                           uint32_t mask_bits) {
  if (mask_bits == 0) mask_bits = board_.dma().mask_bits();
  for (const v1::MemoryBank& b : board_.xen().dom0_ram()) {
    std::vector<uint64_t> run = FindRun(b, count, placement, mask_bits, pages_used_);
    if (run.empty()) continue;
    pages_used_.insert(run.begin(), run.end());
    return run;
  }
  throw SimError(ErrorCode::kResourceExhausted,
                 fmt::format("dom0: no {} free consecutive pages {} ({}-bit mask)", count,
                             PlacementWords(placement), mask_bits));
}

void LinuxDma::FreePage(uint64_t pfn) { pages_used_.erase(pfn); }

std::vector<uint64_t> LinuxDma::AllocBallooned(uint32_t count) {
  std::vector<uint64_t> run =
      FindRun(board_.xen().grant_map_region(), count, v1::PLACEMENT_ANY, 64, balloon_used_);
  if (run.empty())
    throw SimError(ErrorCode::kResourceExhausted,
                   fmt::format("dom0: no {} free ballooned pfns to map grants at", count));
  balloon_used_.insert(run.begin(), run.end());
  return run;
}

void LinuxDma::FreeBallooned(uint64_t pfn) { balloon_used_.erase(pfn); }

}  // namespace dmahil::sim
