// The Xen model of the virtual board (docs/architecture.md §7): domains and their p2m, the domU's
// grant table, mapping a foreign grant into dom0 at a ballooned pfn, and
// GNTTABOP_cache_flush. Follows Xen 4.17 xen/common/grant_table.c (cache_flush(),
// grant_map_exists()) and xen/arch/arm/p2m.c semantics; dom0 is mapped 1:1 as on Arm.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <vector>

#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/fixture.pb.h"
#include "sim/cache.h"
#include "sim/rng.h"

namespace dmahil::sim {

inline constexpr uint32_t kDom0 = 0;
inline constexpr uint32_t kDomU = 1;

/// GNTTABOP_cache_flush op bits (xen/include/public/grant_table.h).
inline constexpr uint32_t kGnttabCacheClean = 1u << 0;
inline constexpr uint32_t kGnttabCacheInval = 1u << 1;

/// What the Xen model is built with besides the layout.
struct XenOptions {
  /// An SMMU sits in front of the DMA engine: Xen maps dom0's RAM 1:1 in it and, for
  /// each grant dom0 maps, the grant's frame at dfn == mfn (dom0 is direct-mapped:
  /// xen/common/grant_table.c map_grant_ref() with gnttab_need_iommu_mapping()).
  bool smmu = false;
  /// Fault grant-not-in-iommu: gnttab_need_iommu_mapping() is false for dom0 (Xen
  /// 4.12-4.14), so grant mappings never reach the SMMU.
  bool grant_not_in_iommu = false;
  /// Seeds which free machine frames the domU's pages get (its page allocator hands out
  /// pages scattered over machine memory, not in order).
  uint64_t seed = 1;
};

/// Counters of hypercalls the model served (statistics and tests).
struct XenStats {
  uint64_t cache_flush_ok = 0;
  uint64_t cache_flush_refused = 0;  // -EINVAL / -EPERM: Linux ignores the return value
};

class Xen {
 public:
  /// layout: validated board layout; cache: the CPU caches the flush op acts on.
  Xen(const v1::XenLayout& layout, Cache& cache, const XenOptions& options = {});

  /// The SMMU's translation of device frame dfn (after dma-ranges) to a machine frame:
  /// dfn itself without an SMMU; with one, dom0's own RAM 1:1 and the grants dom0 has
  /// mapped (while mapped), nullopt otherwise (an SMMU fault).
  std::optional<uint64_t> IommuTranslate(uint64_t dfn) const;

  /// Stage-2 translation: mfn of domain domid's frame gfn, or nullopt if unmapped
  /// (a ballooned dom0 pfn without a grant mapped there, a domU gfn not populated).
  std::optional<uint64_t> P2m(uint32_t domid, uint64_t gfn) const;

  /// True if frame pfn is RAM Xen gave dom0 (a dom0_ram bank, ballooned pfns included,
  /// foreign machine frames not): Xen's view, exact per bank. dom0 Linux's own
  /// pfn_valid() is coarser (whole memory sections): LinuxDma::PfnValid.
  bool Dom0PfnValid(uint64_t pfn) const;

  /// Populates n frames of the domU (XENMEM_populate_physmap + the guest's page
  /// allocator): free machine frames from domu_ram that `placement` allows for a device
  /// described by `dma` with a `mask_bits` DMA mask (common/placement.h: PlacementAllows of
  /// the frame's machine address, its bus frame once dom0 maps it), picked at seeded-random
  /// places (so consecutive grants are rarely machine-contiguous), at the next free gfns
  /// from domu_gfn_base.
  /// Throws SimError(kResourceExhausted) if domu_ram has fewer than n such free frames.
  std::vector<uint64_t> PopulateDomU(uint32_t n, v1::Placement placement,
                                     const v1::DmaEngineDesc& dma, uint32_t mask_bits);

  /// Returns the domU frames gfns to Xen (XENMEM_decrease_reservation). Unknown gfns are
  /// ignored; the caller ends their grants first.
  void DepopulateDomU(const std::vector<uint64_t>& gfns);

  /// The granting domain grants frame gfn to to_domid (gnttab_grant_foreign_access).
  /// Returns the gref. Throws kOutOfRange if gfn is not populated, kResourceExhausted if
  /// the table is full (1024 entries).
  uint32_t GrantAccess(uint32_t granter, uint64_t gfn, uint32_t to_domid);
  /// True while another domain has grant gref of granter mapped (kNotFound if unknown).
  bool GrantMapped(uint32_t granter, uint32_t gref) const;
  /// Ends a grant (gnttab_end_foreign_access). Throws kNotFound for an unknown gref,
  /// kFailedPrecondition while it is still mapped.
  void EndAccess(uint32_t granter, uint32_t gref);

  /// GNTTABOP_map_grant_ref with GNTMAP_host_map by dom0 at host frame host_pfn (a
  /// ballooned pfn). Returns the mfn now mapped there. Throws kNotFound for an unknown
  /// gref (GNTST_bad_gntref), kFailedPrecondition if the grant is for another domain or
  /// host_pfn is not a free ballooned pfn.
  uint64_t MapGrantRef(uint32_t granter, uint32_t gref, uint64_t host_pfn);
  /// GNTTABOP_unmap_grant_ref of the mapping at host_pfn. Throws kNotFound if none.
  void UnmapGrantRef(uint64_t host_pfn);

  /// GNTTABOP_cache_flush issued by dom0 for machine address dev_bus_addr (page aligned
  /// by Linux), bytes [offset, offset+length) of that 4 KiB frame, op = clean/inval bits.
  /// Returns 0 or a negative errno as Xen does: -EINVAL (bad range/op, not RAM), -EPERM
  /// (frame owned by nobody, or by another domain without a grant mapped to dom0).
  int CacheFlush(uint64_t dev_bus_addr, uint32_t offset, uint32_t length, uint32_t op);

  const XenStats& stats() const { return stats_; }
  const v1::XenLayout& layout() const { return layout_; }

 private:
  struct GrantEntry {
    uint64_t gfn = 0;
    uint32_t to_domid = 0;
    uint32_t map_count = 0;
  };
  struct HostMapping {
    uint32_t granter;
    uint32_t gref;
    uint64_t mfn;
  };
  bool InGrantRegion(uint64_t pfn) const;
  std::optional<uint32_t> OwnerOf(uint64_t mfn) const;

  v1::XenLayout layout_;
  Cache& cache_;
  XenOptions options_;
  Rng rng_;
  std::map<uint64_t, uint32_t> iommu_grants_;        // dfn (== mfn) -> mappings using it
  std::vector<uint64_t> domu_free_;                  // free domU machine frames, ascending
  std::map<uint64_t, uint64_t> domu_p2m_;            // gfn -> mfn
  std::unordered_map<uint64_t, uint64_t> domu_m2p_;  // mfn -> gfn
  uint64_t domu_next_gfn_;
  std::map<uint32_t, GrantEntry> domu_grants_;  // gref -> entry (granter kDomU)
  uint32_t next_gref_ = 8;  // refs 0-7 are reserved (GNTTAB_NR_RESERVED_ENTRIES)
  std::map<uint64_t, HostMapping> dom0_foreign_;  // host pfn -> mapping
  XenStats stats_;
};

}  // namespace dmahil::sim
