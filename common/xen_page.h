// The Xen page: the unit of grants, the p2m and GNTTABOP_cache_flush, always 4 KiB whatever
// the Linux page size (xen/include/public/xen.h XEN_PAGE_SHIFT; Linux's
// include/xen/page.h XEN_PAGE_SIZE). Freestanding.
#pragma once

#include <cstdint>

namespace dmahil {

inline constexpr uint64_t kXenPageShift = 12;
inline constexpr uint64_t kXenPageSize = uint64_t{1} << kXenPageShift;  // bytes

}  // namespace dmahil
