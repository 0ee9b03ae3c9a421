#include "common/fault_catalogue.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/kmod/dmahil_uapi.h"
#include "common/dma_ranges.h"
#include "common/placement.h"

namespace dmahil {
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

// The bounce fixtures map with a 32-bit mask: a board needs domU RAM above 4 GiB and a
// swiotlb pool a 32-bit device reaches (else Linux fails every mapping that needs a bounce,
// and no fixture can run there).
std::string NeedsDomuAbove4G(const v1::Board& b) {
  const v1::MemoryBank& pool = b.xen().swiotlb_pool();
  if (pool.size() != 0 && !DeviceReaches(b.dma(), 32, pool.base(), pool.size()))
    return "the swiotlb pool is beyond a 32-bit device's reach: nothing can bounce for it, "
           "so no fixture can exercise bouncing here";
  // A file without the domU's banks (qemu-xen: Xen 4.17 places the domU itself, its heap
  // handing out the highest frames first) has them wherever RAM is.
  const auto& banks = b.xen().domu_ram().empty() ? b.ram() : b.xen().domu_ram();
  for (const v1::MemoryBank& m : banks)
    if (m.base() + m.size() > (uint64_t{1} << 32)) return "";
  return "no domU RAM above 4 GiB: a 32-bit device never needs to bounce its pages";
}

std::string NeedsTranslatableAbove4G(const v1::Board& b) {
  if (std::string why = NeedsDomuAbove4G(b); !why.empty()) return why;
  for (const v1::MemoryBank& m : b.xen().domu_ram().empty() ? b.ram() : b.xen().domu_ram()) {
    if (m.base() + m.size() <= (uint64_t{1} << 32)) continue;
    const uint64_t addr = std::max<uint64_t>(m.base(), uint64_t{1} << 32);
    if (PhysToDma(b.dma(), addr) != kNoTranslation) return "";
  }
  return "the domU RAM above 4 GiB is outside dma-ranges: Linux fails such a mapping "
         "rather than handing out a truncated address";
}

// grant-64k-offset needs a foreign 4 KiB grant at a non-zero Xen frame of a 64 KiB dom0
// page that is DMA-mapped. The qemu-xen board's dom0 runs Linux 6.1 (Debian's, or built
// from its source), whose DMA'd grants never sit there (traced in the 6.1.192 source):
//  - drivers/xen/gntdev.c gntdev_map_grant_pages() (l. 343, 366-370) and
//    drivers/block/xen-blkback/blkback.c xen_blkbk_map() (vaddr(), l. 141, 804-810) map
//    each grant at pfn_to_kaddr(page_to_pfn(page)), one grant per Linux page;
//    arch/arm/xen/p2m.c set_foreign_p2m_mapping() (l. 103) then makes only that first Xen
//    frame foreign (host_addr >> XEN_PAGE_SHIFT); blkback's segments end within it
//    (l. 1267: last_sect < XEN_PAGE_SIZE >> 9; l. 1326 bio_add_page(..., seg.offset)).
//  - grant-table.c gnttab_foreach_grant{,_in_range}() (l. 1199-1248), the only code that
//    puts several grants in one Linux page, serves frontends (their own pages: dom0 or the
//    domU issues no DMA for them) and xenbus_client.c xenbus_map_ring_hvm() (l. 672):
//    shared rings, which the CPU reads and no driver DMA-maps.
//  - dom0's own pages and its swiotlb pool are direct-mapped by Xen on Arm (bfn == pfn),
//    where the first frame's bfn plus the 64 KiB offset is the right address anyway.
// So for every DMA swiotlb-xen sees, paddr & ~PAGE_MASK == paddr & ~XEN_PAGE_MASK within
// the first Xen frame, and the faulty xen_phys_to_bus() (drivers/xen/swiotlb-xen.c l. 47-52,
// pfn_to_bfn(XEN_PFN_DOWN(paddr))) returns the right address: a patch would not be seen.
std::string Needs64kPages(const v1::Board& b) {
  if (b.linux_page_size() != 65536) return "dom0 Linux uses 4 KiB pages";
  if (b.kind() == v1::BOARD_KIND_QEMU_XEN)
    return "Linux 6.1's gntdev and blkback map one grant per 64 KiB page, at its first 4 KiB "
           "frame (drivers/xen/gntdev.c, xen-blkback/blkback.c), so no DMA-mapped grant lies "
           "past the first Xen frame of its page and swiotlb-xen's address is the same either "
           "way";
  return "";
}

std::string NeedsSmmu(const v1::Board& b) {
  return b.smmu().present() ? "" : "no SMMU in front of the DMA engine";
}

// Only the model: no module bit, patch or wrapper yet.
constexpr FaultImplementations kModelOnly{true, 0, "", "", ""};

constexpr v1::Diagnosis kStale = v1::DIAGNOSIS_STALE_LINE;
constexpr v1::Diagnosis kWrongBus = v1::DIAGNOSIS_WRONG_BUS_ADDRESS;
constexpr v1::Diagnosis kStray = v1::DIAGNOSIS_STRAY_DMA;
constexpr v1::Diagnosis kNeverLanded = v1::DIAGNOSIS_NEVER_LANDED;
constexpr v1::Diagnosis kMissing = v1::DIAGNOSIS_MISSING_MAINTENANCE;
constexpr v1::Diagnosis kMisaddressed = v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE;

}  // namespace

std::string_view FaultTreeName(FaultTree tree) { return tree == FaultTree::kXen ? "xen" : "linux"; }

const std::array<FaultInfo, kFaultCount>& FaultCatalogue() {
  static const std::array<FaultInfo, kFaultCount> catalogue = {{
      {FaultId::kDmaOpsBypassXen,
       "dma-ops-bypass-xen",
       FaultTree::kLinux,
       "Linux 4.11-rc1 \"dma-mapping: consolidate get_dma_ops()\" (dev->dma_ops wins over "
       "xen_dma_ops in dom0; thread \"Consolidate get_dma_ops breaks Xen on ARM\", 2017)",
       "dom0 maps with dma-direct instead of swiotlb-xen: dma_addr = phys_to_dma(pfn), cache "
       "maintenance by dom0 VA only, no GNTTABOP_cache_flush",
       "foreign pages get pfn-based bus addresses: wrong bus address, displacement "
       "(pfn - mfn) * 4 KiB",
       {true, DMAHIL_FAULT_BYPASS,
        "the module maps with the real DMA API and hands the engine page_to_phys() of the "
        "foreign page instead of the returned address; the maintenance stays swiotlb-xen's",
        "regressions/linux-6.1/dma-ops-bypass-xen.patch",
        "a watched device's DMA_TO_DEVICE mapping of a foreign page, not bounced, hands the "
        "driver phys_to_dma() of the page's dom0 address (dma-direct's); never on a mapping "
        "the device writes (agent/kmod/dev_audit.c)"},
       kWrongBus,
       kWrongBus,
       Always},
      {FaultId::kBusAddrNoDmaOffset, "bus-addr-no-dma-offset", FaultTree::kLinux,
       "swiotlb-xen before Linux 5.9 \"fix swiotlb-xen for RPi4\" series (xen_phys_to_bus "
       "result used as dma_addr_t, phys_to_dma() not applied)",
       "xen_phys_to_dma() returns the bus frame address without the dma-ranges offset, and "
       "xen_dma_to_phys() takes the dma address as physical",
       "wrong bus address by exactly minus the dma-ranges offset (bus error or stray data)",
       kModelOnly, kWrongBus, kWrongBus, NeedsDmaOffset},
      {FaultId::kCacheFlushLocalAddr,
       "cache-flush-local-addr",
       FaultTree::kLinux,
       "cache maintenance of a foreign page by dom0's pfn instead of the bus frame "
       "(2014 thread \"arm64: introduce is_device_dma_coherent\": dma_to_phys missing in "
       "dma_cache_maint)",
       "the for-device GNTTABOP_cache_flush (map, sync_for_device) is issued for the "
       "pfn-based address of the foreign page; Xen refuses it (the ballooned frame is "
       "nobody's) and Linux ignores the error",
       "stale lines where caches are seen; the for-device maintenance at another address "
       "in the maintenance audit",
       {true, DMAHIL_FAULT_SYNC_MISADDRESS,
        "the module issues the for-device maintenance one 4 KiB page past the bus frame "
        "(displacement +0x1000) rather than at the pfn ((pfn - bfn) << 12): the same class, "
        "another displacement",
        "regressions/linux-6.1/cache-flush-local-addr.patch",
        "a watched device's map of a foreign page, not bounced, issues its for-device "
        "maintenance one 4 KiB page past the bus address (agent/kmod/dev_audit.c)"},
       kStale,
       kMisaddressed,
       NeedsNonCoherent},
      {FaultId::kUnmapNoInvalidateForeign,
       "unmap-no-invalidate-foreign",
       FaultTree::kLinux,
       "unmap_page only has the dma address, the foreign page is skipped (2014 thread "
       "\"Linux grant map/unmap improvement proposal\")",
       "xen_swiotlb_unmap_page does no invalidate for pages that are not pfn_valid",
       "stale lines on DMA_FROM_DEVICE; a missing invalidate in the maintenance audit",
       {true, DMAHIL_FAULT_SKIP_CPU_SYNC,
        "the module maps and unmaps with DMA_ATTR_SKIP_CPU_SYNC, so the map's clean is "
        "missing too: DMA_TO_DEVICE fixtures fail as well (missing clean)",
        "regressions/linux-6.1/unmap-no-invalidate-foreign.patch",
        "a watched device's unmap of a foreign page, not bounced, that is not DMA_TO_DEVICE "
        "skips its for-cpu maintenance, as the historical unmap did: a read-path fault only "
        "(agent/kmod/dev_audit.c)"},
       kStale,
       kMissing,
       NeedsNonCoherent},
      {FaultId::kSyncForDeviceCpuOp,
       "sync-for-device-cpu-op",
       FaultTree::kLinux,
       "3.18-stable \"xen/arm: call xen_dma_sync_single_for_device when appropriate\" (the "
       "for-device sync called the for-cpu operation)",
       "xen_swiotlb_sync_single_for_device does the for-cpu maintenance of a foreign page "
       "(invalidate or nothing) instead of clean; map is right",
       "device reads stale memory when a mapping is reused (DMA_TO_DEVICE); a missing clean "
       "in the maintenance audit",
       {true, 0, "", "regressions/linux-6.1/sync-for-device-cpu-op.patch", ""},
       kStale,
       kMissing,
       NeedsNonCoherent},
      {FaultId::kNoBounceAboveMask,
       "no-bounce-above-mask",
       FaultTree::kLinux,
       "dma_capable checked on the pseudo-physical address / 32-bit truncation (2014: "
       "sizeof(dma_addr_t) != sizeof(phys_addr_t))",
       "xen_swiotlb_map_page never bounces; the device drives only mask_bits address bits",
       "stray DMA into aliased memory",
       {true, 0, "", "regressions/linux-6.1/no-bounce-above-mask.patch", ""},
       kStray,
       kStray,
       NeedsTranslatableAbove4G},
      {FaultId::kBounceNoCopyBack,
       "bounce-no-copy-back",
       FaultTree::kLinux,
       "swiotlb bounce not copied back on unmap DMA_FROM_DEVICE",
       "swiotlb_tbl_unmap_single skips swiotlb_bounce(DMA_FROM_DEVICE)",
       "data never lands",
       {true, DMAHIL_FAULT_NO_COPY_BACK,
        "the module unmaps its mapping that is not DMA_TO_DEVICE with DMA_ATTR_SKIP_CPU_SYNC, "
        "which skips the copy back of every bounced segment (and, on a non-coherent engine, "
        "the unmap's invalidate too)",
        "regressions/linux-6.1/bounce-no-copy-back.patch",
        "a watched device's unmap of a bounced foreign page that is not DMA_TO_DEVICE skips "
        "the copy back (agent/kmod/dev_audit.c)"},
       kNeverLanded,
       kNeverLanded,
       NeedsDomuAbove4G},
      {FaultId::kGrant64kOffset, "grant-64k-offset", FaultTree::kLinux,
       "a 4 KiB grant inside a 64 KiB dom0 Linux page given the bus address of the Linux "
       "page's first Xen frame plus the offset in the Linux page: the PAGE_SHIFT / "
       "XEN_PAGE_SHIFT mix-up the Linux 4.4 64 KiB-granularity series for swiotlb-xen "
       "removed",
       "xen_phys_to_bus() takes pfn_to_bfn() of the Linux page's first Xen frame and adds "
       "phys & ~PAGE_MASK (64 KiB) instead of the Xen frame's own bfn and phys & ~XEN_PAGE_MASK",
       "wrong bus address for every grant but the first of each 64 KiB page", kModelOnly, kWrongBus,
       kWrongBus, Needs64kPages},
      {FaultId::kGrantNotInIommu, "grant-not-in-iommu", FaultTree::kXen,
       "Xen 4.12-4.14 gnttab_need_iommu_mapping() false for the direct-mapped dom0 (fixed in "
       "2021)",
       "map_grant_ref does not add the grant's frame to the SMMU tables",
       "SMMU fault / DMA never lands", kModelOnly, kNeverLanded, kNeverLanded, NeedsSmmu},
      {FaultId::kDoubleMapWrongFrame, "double-map-wrong-frame", FaultTree::kLinux,
       "the same frame granted and mapped twice (2014 thread \"arm64: introduce "
       "is_device_dma_coherent\": \"the same page can be granted several times\"); unmap "
       "resolves the bus frame back to a pfn that is not unique",
       "xen_swiotlb_unmap_page resolves a foreign bus frame to the first dom0 pfn it was "
       "ever mapped at and invalidates by that pfn's VA instead of GNTTABOP_cache_flush",
       "stale lines on the second mapping once the first is unmapped (DMA_FROM_DEVICE); the "
       "invalidate at another address in the maintenance audit",
       kModelOnly, kStale, kMisaddressed, NeedsNonCoherent},
  }};
  return catalogue;
}

const FaultInfo& Fault(FaultId id) { return FaultCatalogue().at(static_cast<size_t>(id)); }

const FaultInfo* FindFault(std::string_view name) {
  for (const FaultInfo& f : FaultCatalogue())
    if (f.name == name) return &f;
  return nullptr;
}

std::string KnownFaultNames() {
  std::vector<std::string_view> names;
  for (const FaultInfo& f : FaultCatalogue()) names.push_back(f.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

FaultId ParseFaultId(std::string_view name) {
  if (const FaultInfo* f = FindFault(name)) return f->id;
  throw std::invalid_argument(
      fmt::format("unknown fault \"{}\"; the catalogue has: {}", name, KnownFaultNames()));
}

std::vector<FaultId> FaultsOfKmodBits(uint32_t kmod_faults, uint32_t* unknown_bits) {
  std::vector<FaultId> out;
  uint32_t claimed = 0;
  for (const FaultInfo& f : FaultCatalogue()) {
    const uint32_t bit = f.implementations.kmod_bit;
    if (bit == 0) continue;
    claimed |= bit;
    if ((kmod_faults & bit) != 0) out.push_back(f.id);
  }
  if (unknown_bits != nullptr) *unknown_bits = kmod_faults & ~claimed;
  return out;
}

std::string DiagnosisKebabName(v1::Diagnosis diagnosis) {
  std::string name = v1::Diagnosis_Name(diagnosis);
  constexpr std::string_view kPrefix = "DIAGNOSIS_";
  if (name.rfind(kPrefix, 0) == 0) name.erase(0, kPrefix.size());
  for (char& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(c));
  return name.empty() ? "none" : name;
}

std::optional<v1::Diagnosis> ParseDiagnosis(std::string_view name) {
  const google::protobuf::EnumDescriptor* d = v1::Diagnosis_descriptor();
  for (int i = 0; i < d->value_count(); ++i) {
    const auto value = static_cast<v1::Diagnosis>(d->value(i)->number());
    if (value != v1::DIAGNOSIS_NONE && DiagnosisKebabName(value) == name) return value;
  }
  return std::nullopt;
}

std::string KnownDiagnosisNames() {
  std::vector<std::string> names;
  const google::protobuf::EnumDescriptor* d = v1::Diagnosis_descriptor();
  for (int i = 0; i < d->value_count(); ++i)
    if (d->value(i)->number() != v1::DIAGNOSIS_NONE)
      names.push_back(DiagnosisKebabName(static_cast<v1::Diagnosis>(d->value(i)->number())));
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string_view IoPathName(v1::IoPath path) {
  switch (path) {
    case v1::IO_PATH_WRITE:
      return "write";
    case v1::IO_PATH_READ:
      return "read";
    case v1::IO_PATH_WRITE_AND_READ:
      return "write-and-read";
    default:
      return "";
  }
}

std::optional<v1::IoPath> ParseIoPath(std::string_view name) {
  for (const v1::IoPath p : {v1::IO_PATH_WRITE, v1::IO_PATH_READ, v1::IO_PATH_WRITE_AND_READ})
    if (IoPathName(p) == name) return p;
  return std::nullopt;
}

}  // namespace dmahil
