// Typed calls into dmahil.ko (/dev/dmahil, agent/kmod/dmahil_uapi.h) for the linux-xen
// backend: every ioctl argument struct is built and checked here, and every errno comes
// back as a grpc::Status whose message names the call, its arguments and the errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "agent/kmod/dmahil_uapi.h"
#include "agent/linux_xen/device_file.h"
#include "dmahil/v1/agent.pb.h"

namespace dmahil::agent::linux_xen {

/// Records one ioctl may return: enough for any one map/sync/unmap of 1024 pages.
inline constexpr uint32_t kMaxMaintenanceOps = 4096;

/// The errno of a dmahil.ko (or gntdev/gntalloc) call as a gRPC status, as the uapi header
/// documents them: EINVAL -> INVALID_ARGUMENT, ENOENT -> NOT_FOUND, EBUSY ->
/// FAILED_PRECONDITION, ENOMEM/ENOSPC -> RESOURCE_EXHAUSTED, EACCES -> PERMISSION_DENIED,
/// ENODEV -> FAILED_PRECONDITION, EOPNOTSUPP -> UNIMPLEMENTED, anything else -> INTERNAL. The
/// message is
/// "<what>: <strerror> (errno N)".
grpc::Status ErrnoStatus(int err, const std::string& what);

/// A pin: user pages held by the module (pin_user_pages_fast, FOLL_LONGTERM).
struct KmodPin {
  uint32_t pin = 0;            // handle, never 0
  std::vector<uint64_t> pfns;  // dom0 frame per 4 KiB page, in 4 KiB units (XEN_PFN_DOWN)
  std::vector<uint64_t> bfns;  // pfn_to_bfn(pfn) per page: the mfn for a foreign page
  uint32_t page_size = 0;      // the kernel's PAGE_SIZE, bytes
};

class Kmod {
 public:
  /// `file`: /dev/dmahil (or a test's fake). Takes ownership.
  explicit Kmod(std::unique_ptr<DeviceFile> file);

  /// DMAHIL_IOC_INFO. FAILED_PRECONDITION if the module speaks another ABI version.
  grpc::Status Info(dmahil_info* out);
  /// Pins `pages` 4 KiB pages at `uaddr` (PAGE_SIZE aligned; 1..DMAHIL_MAX_PIN_PAGES):
  /// `sparse` (DMAHIL_PIN_SPARSE), page i is the first 4 KiB of the Linux page at uaddr +
  /// i * PAGE_SIZE (a gntdev mapping), else at uaddr + i * 4096. INVALID_ARGUMENT before any
  /// ioctl for a bad count or an address not 4 KiB aligned; the module refuses one not
  /// PAGE_SIZE aligned (EINVAL).
  grpc::Status Pin(const void* uaddr, uint64_t pages, bool sparse, KmodPin* out);
  /// FAILED_PRECONDITION (EBUSY) while a mapping of the pin lives.
  grpc::Status Unpin(uint32_t pin);
  /// Maps [offset, offset + length) bytes of a pin (pin of `pin_pages` pages) for the
  /// engine, direction `dir`, one dma_map_page per 4 KiB page or one dma_map_sg (`sg`);
  /// `mask_bits` 0 or 32..64. Fills out->mapping, out->segments (offsets relative to the
  /// pin) and out->maintenance. INVALID_ARGUMENT before any ioctl for a zero or
  /// out-of-range length, an unknown direction or a bad mask. INTERNAL if the module's
  /// reply is malformed (mapping 0, or a segment count of 0 or above DMAHIL_MAX_SEGMENTS):
  /// a nonzero mapping is unmapped first, so nothing stays mapped and the pin can be
  /// unpinned (the message says so, or, if that UNMAP fails too, names the mapping that
  /// may still hold the pin). On any error `out` is left unchanged.
  grpc::Status Map(uint32_t pin, uint64_t pin_pages, v1::DmaDirection dir, uint64_t offset,
                   uint64_t length, bool sg, uint32_t mask_bits, v1::DmaMapping* out);
  /// dma_sync_*_for_cpu or _for_device over every segment of the mapping.
  grpc::Status Sync(uint32_t mapping, v1::SyncFor for_, v1::Maintenance* maintenance);
  /// Unmaps; the mapping handle is gone afterwards.
  grpc::Status Unmap(uint32_t mapping, v1::Maintenance* maintenance);
  /// The engine moves `length` bytes (1..DMAHIL_MAX_XFER_BYTES) between bus address
  /// `dma_addr` and `buf`: `device_writes` true = memory at dma_addr gets buf's bytes.
  /// PERMISSION_DENIED (EACCES) outside every live mapping's windows.
  grpc::Status Xfer(uint64_t dma_addr, void* buf, uint32_t length, bool device_writes);

  /// DMAHIL_IOC_WATCH: start watching `device` (a DT path, or a PCI or platform dev_name),
  /// or stop if it is empty. INVALID_ARGUMENT before any ioctl for a name of 32 bytes or
  /// more; FAILED_PRECONDITION (EBUSY) while another device is watched or (ENODEV) no
  /// device has that name; UNIMPLEMENTED (EOPNOTSUPP) if its ops cannot be wrapped.
  /// `direct`: set if the device has no DMA-mapping ops (dma-direct: held, not recorded).
  grpc::Status Watch(const std::string& device, bool* direct);
  /// DMAHIL_IOC_WATCH_READ until the ring is empty: the records, each op with the
  /// maintenance of its call (a call's maintenance goes to its first op; maintenance of a
  /// call that recorded no op, e.g. a failed map, is left out). NOT_FOUND (ENOENT) if
  /// nothing is watched.
  ///
  /// The module removes the records each WATCH_READ returns, so when a later WATCH_READ of
  /// the same read fails, the records (and dropped count) taken so far are kept here, not
  /// lost: the error's message says how many, `out` is left unchanged (a failed gRPC call
  /// carries no response), and the next ReadWatch returns them first, oldest first, with
  /// what it reads. At most kMaxKeptWatchRecords are kept; newer ones beyond it are counted
  /// in `dropped`. A successful Watch (start or stop) discards them, as the module
  /// discards its own records when a watch starts.
  grpc::Status ReadWatch(v1::DeviceOps* out);
  /// Most records a failed ReadWatch keeps for the next (as many as the module's ring).
  static constexpr size_t kMaxKeptWatchRecords = DMAHIL_DEV_RECORDS;
  /// Whether every maintenance probe (GNTTABOP_cache_flush and arch_sync_dma_*) is armed,
  /// from the last Info().
  bool audited() const { return audited_; }

 private:
  grpc::Status Call(unsigned long request, void* arg, const std::string& what);
  void ToMaintenance(const std::vector<dmahil_cache_op>& ops, const dmahil_ops_out& out,
                     v1::Maintenance* m) const;

  std::unique_ptr<DeviceFile> file_;
  bool audited_ = false;
  // Records (oldest first) and dropped count a failed ReadWatch took from the module.
  std::vector<dmahil_dev_op> watch_kept_;
  uint64_t watch_kept_dropped_ = 0;
};

/// DmaDirection -> the kernel's enum dma_data_direction value (DMAHIL_DMA_*); false for
/// DMA_DIRECTION_UNSPECIFIED or an unknown value.
bool ToKernelDirection(v1::DmaDirection dir, uint32_t* out);

}  // namespace dmahil::agent::linux_xen
