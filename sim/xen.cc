#include "sim/xen.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/placement.h"
#include "sim/error.h"

namespace dmahil::sim {
namespace {

constexpr uint32_t kMaxGrants = 1024;

bool InBank(const v1::MemoryBank& b, uint64_t addr) {
  return addr >= b.base() && addr - b.base() < b.size();
}

}  // namespace

Xen::Xen(const v1::XenLayout& layout, Cache& cache, const XenOptions& options)
    : layout_(layout),
      cache_(cache),
      options_(options),
      rng_(options.seed),
      domu_next_gfn_(layout.domu_gfn_base() >> kXenPageShift) {
  for (const v1::MemoryBank& b : layout_.domu_ram())
    for (uint64_t a = b.base(); a < b.base() + b.size(); a += kXenPageSize)
      domu_free_.push_back(a >> kXenPageShift);
  std::sort(domu_free_.begin(), domu_free_.end());
}

bool Xen::InGrantRegion(uint64_t pfn) const {
  return InBank(layout_.grant_map_region(), pfn << kXenPageShift);
}

bool Xen::Dom0PfnValid(uint64_t pfn) const {
  const uint64_t addr = pfn << kXenPageShift;
  return std::any_of(layout_.dom0_ram().begin(), layout_.dom0_ram().end(),
                     [&](const v1::MemoryBank& b) { return InBank(b, addr); });
}

std::optional<uint64_t> Xen::P2m(uint32_t domid, uint64_t gfn) const {
  if (domid == kDom0) {
    if (auto it = dom0_foreign_.find(gfn); it != dom0_foreign_.end()) return it->second.mfn;
    if (InGrantRegion(gfn) || !Dom0PfnValid(gfn)) return std::nullopt;
    return gfn;  // 1:1
  }
  if (domid == kDomU) {
    if (auto it = domu_p2m_.find(gfn); it != domu_p2m_.end()) return it->second;
  }
  return std::nullopt;
}

std::optional<uint64_t> Xen::IommuTranslate(uint64_t dfn) const {
  if (!options_.smmu) return dfn;
  if (iommu_grants_.count(dfn) != 0) return dfn;
  if (OwnerOf(dfn) == kDom0) return dfn;
  return std::nullopt;
}

std::optional<uint32_t> Xen::OwnerOf(uint64_t mfn) const {
  if (domu_m2p_.count(mfn) != 0) return kDomU;
  if (Dom0PfnValid(mfn) && !InGrantRegion(mfn)) return kDom0;
  return std::nullopt;  // ballooned out (returned to Xen) or not RAM
}

std::vector<uint64_t> Xen::PopulateDomU(uint32_t n, v1::Placement placement,
                                        const v1::DmaEngineDesc& dma, uint32_t mask_bits) {
  auto eligible = [&](uint64_t mfn) {
    return PlacementAllows(placement, dma, mask_bits, mfn << kXenPageShift);
  };
  const size_t available =
      static_cast<size_t>(std::count_if(domu_free_.begin(), domu_free_.end(), eligible));
  if (available < n)
    throw SimError(ErrorCode::kResourceExhausted,
                   fmt::format("domU: only {} free frames {} ({}-bit mask), {} asked", available,
                               PlacementWords(placement), mask_bits, n));
  std::vector<uint64_t> gfns;
  while (gfns.size() < n) {
    const size_t i = static_cast<size_t>(rng_.Below(domu_free_.size()));
    const uint64_t mfn = domu_free_[i];
    if (!eligible(mfn)) continue;
    domu_free_.erase(domu_free_.begin() + static_cast<std::ptrdiff_t>(i));
    const uint64_t gfn = domu_next_gfn_++;
    domu_p2m_[gfn] = mfn;
    domu_m2p_[mfn] = gfn;
    gfns.push_back(gfn);
  }
  return gfns;
}

void Xen::DepopulateDomU(const std::vector<uint64_t>& gfns) {
  for (uint64_t gfn : gfns) {
    auto it = domu_p2m_.find(gfn);
    if (it == domu_p2m_.end()) continue;
    domu_m2p_.erase(it->second);
    domu_free_.insert(std::lower_bound(domu_free_.begin(), domu_free_.end(), it->second),
                      it->second);
    domu_p2m_.erase(it);
  }
}

uint32_t Xen::GrantAccess(uint32_t granter, uint64_t gfn, uint32_t to_domid) {
  if (granter != kDomU)
    throw SimError(ErrorCode::kInvalidArgument, "only the domU grants pages in this model");
  if (!P2m(granter, gfn))
    throw SimError(ErrorCode::kOutOfRange, fmt::format("gfn {:#x} is not populated", gfn));
  if (domu_grants_.size() >= kMaxGrants)
    throw SimError(ErrorCode::kResourceExhausted, "grant table full (1024 entries)");
  const uint32_t gref = next_gref_++;
  domu_grants_[gref] = GrantEntry{gfn, to_domid, 0};
  return gref;
}

bool Xen::GrantMapped(uint32_t granter, uint32_t gref) const {
  auto it = domu_grants_.find(gref);
  if (granter != kDomU || it == domu_grants_.end())
    throw SimError(ErrorCode::kNotFound, fmt::format("unknown gref {}", gref));
  return it->second.map_count != 0;
}

void Xen::EndAccess(uint32_t granter, uint32_t gref) {
  auto it = domu_grants_.find(gref);
  if (granter != kDomU || it == domu_grants_.end())
    throw SimError(ErrorCode::kNotFound, fmt::format("unknown gref {}", gref));
  if (it->second.map_count != 0)
    throw SimError(ErrorCode::kFailedPrecondition,
                   fmt::format("gref {} is still mapped by dom{}", gref, it->second.to_domid));
  domu_grants_.erase(it);
}

uint64_t Xen::MapGrantRef(uint32_t granter, uint32_t gref, uint64_t host_pfn) {
  auto it = domu_grants_.find(gref);
  if (granter != kDomU || it == domu_grants_.end())
    throw SimError(ErrorCode::kNotFound,
                   fmt::format("GNTST_bad_gntref: dom{} has no gref {}", granter, gref));
  if (it->second.to_domid != kDom0)
    throw SimError(ErrorCode::kFailedPrecondition,
                   fmt::format("gref {} is granted to dom{}, not dom0", gref, it->second.to_domid));
  if (!InGrantRegion(host_pfn) || dom0_foreign_.count(host_pfn) != 0)
    throw SimError(ErrorCode::kFailedPrecondition,
                   fmt::format("host pfn {:#x} is not a free ballooned pfn", host_pfn));
  const uint64_t mfn = *P2m(kDomU, it->second.gfn);
  ++it->second.map_count;
  dom0_foreign_[host_pfn] = HostMapping{granter, gref, mfn};
  if (options_.smmu && !options_.grant_not_in_iommu) ++iommu_grants_[mfn];
  return mfn;
}

void Xen::UnmapGrantRef(uint64_t host_pfn) {
  auto it = dom0_foreign_.find(host_pfn);
  if (it == dom0_foreign_.end())
    throw SimError(ErrorCode::kNotFound,
                   fmt::format("no grant mapped at host pfn {:#x}", host_pfn));
  --domu_grants_.at(it->second.gref).map_count;
  if (auto io = iommu_grants_.find(it->second.mfn); io != iommu_grants_.end() && --io->second == 0)
    iommu_grants_.erase(io);
  dom0_foreign_.erase(it);
}

int Xen::CacheFlush(uint64_t dev_bus_addr, uint32_t offset, uint32_t length, uint32_t op) {
  constexpr int kEinval = -22;
  constexpr int kEperm = -1;
  if (offset >= kXenPageSize || length > kXenPageSize || offset + length > kXenPageSize ||
      (op & ~(kGnttabCacheClean | kGnttabCacheInval)) != 0) {
    ++stats_.cache_flush_refused;
    return kEinval;
  }
  if (length == 0 || op == 0) return 0;
  const uint64_t mfn = dev_bus_addr >> kXenPageShift;
  const std::optional<uint32_t> owner = OwnerOf(mfn);
  if (!owner) {
    ++stats_.cache_flush_refused;
    return Dom0PfnValid(mfn) ? kEperm : kEinval;
  }
  if (*owner != kDom0) {  // grant_map_exists(): dom0 must have this frame mapped
    const bool mapped = std::any_of(dom0_foreign_.begin(), dom0_foreign_.end(),
                                    [&](const auto& m) { return m.second.mfn == mfn; });
    if (!mapped) {
      ++stats_.cache_flush_refused;
      return kEinval;
    }
  }
  const uint64_t addr = (mfn << kXenPageShift) + offset;
  if ((op & kGnttabCacheInval) && (op & kGnttabCacheClean)) {
    cache_.CleanInvalidate(addr, length);
  } else if (op & kGnttabCacheInval) {
    cache_.Invalidate(addr, length);
  } else {
    cache_.Clean(addr, length);
  }
  ++stats_.cache_flush_ok;
  return 0;
}

}  // namespace dmahil::sim
