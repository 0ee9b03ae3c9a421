#include "sim/faults.h"

#include <fmt/format.h>

#include "common/dma_ranges.h"
#include "sim/error.h"
#include "sim/rng.h"

namespace dmahil::sim {
namespace {

std::string Always(const v1::Board&) { return ""; }

std::string NeedsNonCoherent(const v1::Board& b) {
  return b.dma().coherent() ? "the DMA engine is coherent: no cache maintenance to get wrong" : "";
}

std::string NeedsDmaOffset(const v1::Board& b) {
  for (const v1::DmaRange& r : b.dma().dma_ranges())
    if (r.bus_base() != r.cpu_base()) return "";
  return "no dma-ranges offset: bus address == CPU physical address";
}

std::string NeedsDomuAbove4G(const v1::Board& b) {
  for (const v1::MemoryBank& m : b.xen().domu_ram())
    if (m.base() + m.size() > (uint64_t{1} << 32)) return "";
  return "no domU RAM above 4 GiB: a 32-bit device never needs to bounce its pages";
}

std::string NeedsTranslatableAbove4G(const v1::Board& b) {
  if (std::string why = NeedsDomuAbove4G(b); !why.empty()) return why;
  for (const v1::MemoryBank& m : b.xen().domu_ram()) {
    if (m.base() + m.size() <= (uint64_t{1} << 32)) continue;
    const uint64_t addr = std::max<uint64_t>(m.base(), uint64_t{1} << 32);
    if (PhysToDma(b.dma(), addr) != kNoTranslation) return "";
  }
  return "the domU RAM above 4 GiB is outside dma-ranges: Linux fails such a mapping "
         "rather than handing out a truncated address";
}

std::string Needs64kPages(const v1::Board& b) {
  return b.linux_page_size() == 65536 ? "" : "dom0 Linux uses 4 KiB pages";
}

std::string NeedsSmmu(const v1::Board& b) {
  return b.smmu().present() ? "" : "no SMMU in front of the DMA engine";
}

}  // namespace

const std::vector<FaultInfo>& FaultCatalogue() {
  static const std::vector<FaultInfo> catalogue = {
      {"dma-ops-bypass-xen", "linux",
       "Linux 4.11-rc1 \"dma-mapping: consolidate get_dma_ops()\" (dev->dma_ops wins over "
       "xen_dma_ops in dom0; thread \"Consolidate get_dma_ops breaks Xen on ARM\", 2017)",
       "dom0 maps with dma-direct instead of swiotlb-xen: dma_addr = phys_to_dma(pfn), cache "
       "maintenance by dom0 VA only, no GNTTABOP_cache_flush",
       "foreign pages get pfn-based bus addresses: wrong bus address, displacement "
       "(pfn - mfn) * 4 KiB",
       true, "wrong-bus-address", Always},
      {"bus-addr-no-dma-offset", "linux",
       "swiotlb-xen before Linux 5.9 \"fix swiotlb-xen for RPi4\" series (xen_phys_to_bus "
       "result used as dma_addr_t, phys_to_dma() not applied)",
       "xen_phys_to_dma() returns the bus frame address without the dma-ranges offset, and "
       "xen_dma_to_phys() takes the dma address as physical",
       "wrong bus address by exactly minus the dma-ranges offset (bus error or stray data)", true,
       "wrong-bus-address", NeedsDmaOffset},
      {"cache-flush-local-addr", "linux",
       "cache maintenance of a foreign page by dom0's pfn instead of the bus frame "
       "(2014 thread \"arm64: introduce is_device_dma_coherent\": dma_to_phys missing in "
       "dma_cache_maint)",
       "the for-device GNTTABOP_cache_flush (map, sync_for_device) is issued for the "
       "pfn-based address of the foreign page; Xen refuses it (the ballooned frame is "
       "nobody's) and Linux ignores the error",
       "stale lines", true, "stale-line", NeedsNonCoherent},
      {"unmap-no-invalidate-foreign", "linux",
       "unmap_page only has the dma address, the foreign page is skipped (2014 thread "
       "\"Linux grant map/unmap improvement proposal\")",
       "xen_swiotlb_unmap_page does no invalidate for pages that are not pfn_valid",
       "stale lines on DMA_FROM_DEVICE", true, "stale-line", NeedsNonCoherent},
      {"sync-for-device-cpu-op", "linux",
       "3.18-stable \"xen/arm: call xen_dma_sync_single_for_device when appropriate\" (the "
       "for-device sync called the for-cpu operation)",
       "xen_swiotlb_sync_single_for_device does the for-cpu maintenance of a foreign page "
       "(invalidate or nothing) instead of clean; map is right",
       "device reads stale memory when a mapping is reused (DMA_TO_DEVICE)", true, "stale-line",
       NeedsNonCoherent},
      {"no-bounce-above-mask", "linux",
       "dma_capable checked on the pseudo-physical address / 32-bit truncation (2014: "
       "sizeof(dma_addr_t) != sizeof(phys_addr_t))",
       "xen_swiotlb_map_page never bounces; the device drives only mask_bits address bits",
       "stray DMA into aliased memory", true, "stray-dma", NeedsTranslatableAbove4G},
      {"bounce-no-copy-back", "linux", "swiotlb bounce not copied back on unmap DMA_FROM_DEVICE",
       "swiotlb_tbl_unmap_single skips swiotlb_bounce(DMA_FROM_DEVICE)", "data never lands", true,
       "never-landed", NeedsDomuAbove4G},
      {"grant-64k-offset", "linux",
       "a 4 KiB grant inside a 64 KiB dom0 Linux page given the bus address of the Linux "
       "page's first Xen frame plus the offset in the Linux page: the PAGE_SHIFT / "
       "XEN_PAGE_SHIFT mix-up the Linux 4.4 64 KiB-granularity series for swiotlb-xen "
       "removed",
       "xen_phys_to_bus() takes pfn_to_bfn() of the Linux page's first Xen frame and adds "
       "phys & ~PAGE_MASK (64 KiB) instead of the Xen frame's own bfn and phys & ~XEN_PAGE_MASK",
       "wrong bus address for every grant but the first of each 64 KiB page", true,
       "wrong-bus-address", Needs64kPages},
      {"grant-not-in-iommu", "xen",
       "Xen 4.12-4.14 gnttab_need_iommu_mapping() false for the direct-mapped dom0 (fixed in "
       "2021)",
       "map_grant_ref does not add the grant's frame to the SMMU tables",
       "SMMU fault / DMA never lands", true, "never-landed", NeedsSmmu},
      {"double-map-wrong-frame", "linux",
       "the same frame granted and mapped twice (2014 thread \"arm64: introduce "
       "is_device_dma_coherent\": \"the same page can be granted several times\"); unmap "
       "resolves the bus frame back to a pfn that is not unique",
       "xen_swiotlb_unmap_page resolves a foreign bus frame to the first dom0 pfn it was "
       "ever mapped at and invalidates by that pfn's VA instead of GNTTABOP_cache_flush",
       "stale lines on the second mapping once the first is unmapped (DMA_FROM_DEVICE)", true,
       "stale-line", NeedsNonCoherent},
  };
  return catalogue;
}

const FaultInfo* FindFault(std::string_view id) {
  for (const FaultInfo& f : FaultCatalogue())
    if (f.id == id) return &f;
  return nullptr;
}

bool FaultTakenThisBoot(uint64_t board_seed, std::string_view id, double boot_rate) {
  if (!(boot_rate < 1.0)) return true;   // 1 (and above, NaN): every boot
  if (!(boot_rate > 0.0)) return false;  // 0 and below: never
  uint64_t h = 0xcbf29ce484222325ULL;    // FNV-1a of the id
  for (unsigned char c : id) h = (h ^ c) * 0x100000001b3ULL;
  // A stream of its own: the board seed through one splitmix64 step, xor the id's hash.
  Rng rng(Rng(board_seed ^ 0x626f6f742d726576ULL).Next() ^ h);         // "boot-rev"
  const double u = static_cast<double>(rng.Next() >> 11) * 0x1.0p-53;  // uniform [0, 1)
  return u < boot_rate;
}

FaultSet FaultSet::Parse(const std::vector<std::string>& ids) {
  FaultSet set;
  for (const std::string& id : ids) {
    const FaultInfo* f = FindFault(id);
    if (f == nullptr) {
      std::string known;
      for (const FaultInfo& k : FaultCatalogue()) known += fmt::format(" {}", k.id);
      throw SimError(ErrorCode::kInvalidArgument,
                     fmt::format("unknown fault \"{}\"; the catalogue has:{}", id, known));
    }
    if (!f->modelled)
      throw SimError(ErrorCode::kInvalidArgument,
                     fmt::format("fault \"{}\" is catalogued but not modelled yet", id));
    set.ids_.insert(id);
  }
  return set;
}

std::string FaultSet::ToString() const {
  if (ids_.empty()) return "none";
  std::string out;
  for (const std::string& id : ids_) out += (out.empty() ? "" : ",") + id;
  return out;
}

}  // namespace dmahil::sim
