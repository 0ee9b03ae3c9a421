// The agent's `linux-xen` backend (docs/architecture.md §3): the real one, for the qemu-xen board
// and hardware boards. guest role: grants through /dev/xen/gntalloc (drivers/xen/gntalloc.c). dom0
// role: foreign grants through /dev/xen/gntdev (drivers/xen/gntdev.c), dom0's own pages from
// anonymous memory, and every DMA-API call through dmahil.ko (/dev/dmahil,
// agent/kmod/dmahil_uapi.h), which pins the pages and maps them for the engine.
//
// The service (agent_service.h) validates ranges and roles before a call gets here; this
// backend checks what only it can (handles, what the kernel accepts) and turns each errno
// into a status that names the device, the call and its arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "agent/backend.h"
#include "agent/linux_xen/block_device.h"
#include "agent/linux_xen/device_file.h"
#include "agent/linux_xen/kmod_client.h"

namespace dmahil::agent::linux_xen {

/// This process's Linux page frame numbers (units of the kernel's PAGE_SIZE, not 4 KiB)
/// of `pages` Linux pages from `addr` (PAGE_SIZE aligned) into `pfns`. Returns the index
/// of the first page with no frame (not present, or frames hidden), or `pages` if all
/// have one.
using PfnLookup = std::function<size_t(const void* addr, size_t pages, uint64_t* pfns)>;

/// The pagemap lookup: one read of /proc/self/pagemap for the whole range, one entry per
/// Linux page (Documentation/admin-guide/mm/pagemap.rst: bits 0-54 pfn, bit 63 present;
/// the pfn reads as 0 without CAP_SYS_ADMIN).
size_t PagemapPfns(const void* addr, size_t pages, uint64_t* pfns);

/// The kernel's PAGE_SIZE in bytes (sysconf(_SC_PAGESIZE)): 4096, or 65536 on a
/// CONFIG_ARM64_64K_PAGES kernel.
uint64_t LinuxPageSize();

/// The open devices of one role. guest: gntalloc. dom0: gntdev and kmod.
struct LinuxXenDevices {
  std::unique_ptr<DeviceFile> gntalloc;
  std::unique_ptr<DeviceFile> gntdev;
  std::shared_ptr<Kmod> kmod;  // shared with the engine (edu_port.h): same open file
  PfnLookup pfns_of = PagemapPfns;
  /// The kernel's PAGE_SIZE, bytes (a multiple of 4096). gntalloc and gntdev put one 4 KiB
  /// grant at the start of each Linux page of their mmap (drivers/xen/gntalloc.c,
  /// drivers/xen/gntdev.c), so a granted or foreign buffer's 4 KiB page i lies at
  /// i * page_size; a local buffer's pages are contiguous.
  uint64_t page_size = LinuxPageSize();
  /// BlockIo's device (dmahil-agent --block-device); null: none.
  std::unique_ptr<BlockDevice> block;
  /// How its frontend connected it (--block-grants, AgentInfo.block_grants); "": unknown.
  std::string block_grants;
};

/// Opens the devices a role needs from their standard paths (/dev/xen/gntalloc;
/// /dev/xen/gntdev and /dev/dmahil). Throws std::runtime_error naming the device, the
/// errno and the module to load (xen-gntalloc, xen-gntdev, dmahil.ko) if one cannot be
/// opened, or if dmahil.ko's ABI differs.
LinuxXenDevices OpenLinuxXenDevices(v1::Role role);

class LinuxXenBackend final : public Backend {
 public:
  /// role: ROLE_DOM0 or ROLE_GUEST; domid: this domain's id; board: the board name
  /// AgentInfo reports. `devices` must hold what the role needs (see LinuxXenDevices).
  LinuxXenBackend(v1::Role role, uint32_t domid, std::string board, LinuxXenDevices devices);
  /// Unmaps every mapping and releases every buffer (closing the devices would too).
  ~LinuxXenBackend() override;

  v1::AgentInfo Info() override;
  std::optional<uint64_t> BufferBytes(uint32_t buffer) override;
  /// gntalloc IOCTL_GNTALLOC_ALLOC_GREF + mmap of one Linux page per grant; the gfns
  /// reported are 4 KiB frames (the Linux pfn times PAGE_SIZE / 4096: gntalloc grants
  /// xen_page_to_gfn(), a page's first 4 KiB). UNIMPLEMENTED for grants_per_page 2
  /// (gntalloc grants each page it allocates once). The placement is not checked: Xen, not
  /// the guest, places the domU's frames (the qemu-xen board boots the domU where the
  /// fixtures need it), and dom0 reports the bus frames that result. Refused after
  /// ALLOC_GREF (mmap, pagemap), the grefs are deallocated and the mapping undone first
  /// (Refuse: "nothing was kept").
  grpc::Status AllocGrants(const v1::AllocGrantsRequest& req,
                           v1::AllocGrantsResponse* resp) override;
  /// gntdev IOCTL_GNTDEV_MAP_GRANT_REF + mmap of one Linux page per grant (where gntdev
  /// maps the grants on Arm, each at the start of its page), then a DMAHIL_PIN_SPARSE
  /// dmahil.ko pin for the pfns (4 KiB frames). NOT_FOUND if Xen refuses the grants; the
  /// pin's errno status if dmahil.ko refuses the pin. Either way the mmap and the grant
  /// mappings are undone first (Refuse: "nothing was kept").
  grpc::Status MapForeign(const v1::MapForeignRequest& req, v1::BufferInfo* resp) override;
  /// Anonymous memory: dom0 role, pinned by dmahil.ko (pfns reported); guest role, for
  /// BlockIo, locked with mlock (no pfns: a domU has no dmahil.ko). UNIMPLEMENTED for a
  /// placement other than ANY. A refused pin or mlock unmaps the memory first (Refuse).
  grpc::Status AllocLocal(const v1::AllocLocalRequest& req, v1::BufferInfo* resp) override;
  /// UNIMPLEMENTED: dmahil.ko ABI 2 maps one pin at a time.
  grpc::Status ComposeBuffer(const v1::ComposeBufferRequest& req, v1::BufferInfo* resp) override;
  /// Unpins (dom0), unmaps and ends the grants or grant mappings. NOT_FOUND for an unknown
  /// handle; FAILED_PRECONDITION while the agent has DMA mappings of it. If dmahil.ko
  /// refuses the unpin, nothing is released and the buffer is kept whole for a retry;
  /// a later step that fails still releases the handle (its message says so).
  grpc::Status ReleaseBuffer(uint32_t buffer) override;
  /// DMAHIL_IOC_MAP; a segment's write_refused is dmahil.ko's DMAHIL_SEG_WRITE_REFUSED
  /// (its seg_write_safe(), agent/kmod/dmahil_main.c), whose XFER fence refuses writes
  /// there with EACCES.
  grpc::Status DmaMap(const v1::DmaMapRequest& req, v1::DmaMapping* resp) override;
  grpc::Status DmaSync(uint32_t mapping, v1::SyncFor for_, v1::DmaSyncResponse* resp) override;
  grpc::Status DmaUnmap(uint32_t mapping, v1::DmaUnmapResponse* resp) override;
  grpc::Status CpuWrite(uint32_t buffer, uint64_t offset, const uint8_t* src,
                        uint64_t len) override;
  grpc::Status CpuRead(uint32_t buffer, uint64_t offset, uint8_t* dst, uint64_t len) override;
  /// DC CIVAC by line (arm64 only: FAILED_PRECONDITION elsewhere).
  grpc::Status CpuCleanInvalidate(uint32_t buffer, uint64_t offset, uint64_t len) override;
  /// O_DIRECT through devices.block on a local buffer (see Backend::BlockIo).
  grpc::Status BlockIo(const v1::BlockIoRequest& req, v1::BlockIoResponse* resp) override;
  /// dmahil.ko's DMA-API audit of a real device (Kmod::Watch, Kmod::ReadWatch);
  /// FAILED_PRECONDITION without dmahil.ko (a guest).
  grpc::Status WatchDevice(const std::string& device, v1::WatchDeviceResponse* resp) override;
  grpc::Status ReadDeviceOps(v1::DeviceOps* out) override;

 private:
  enum class Kind { kGranted, kForeign, kLocal };
  struct Buffer {
    Kind kind;
    uint8_t* addr = nullptr;
    uint64_t pages = 0;   // 4 KiB pages
    uint64_t stride = 0;  // bytes from one 4 KiB page to the next in the mmap
    uint64_t index = 0;   // gntalloc / gntdev mmap offset
    uint32_t pin = 0;     // dmahil.ko pin (dom0 role)
    uint32_t mappings = 0;
  };

  grpc::Status NeedRole(v1::Role role, const char* call) const;
  /// Bytes of `b`'s mmap, pages * stride: one Linux page per 4 KiB page of a granted or
  /// foreign buffer, pages * 4 KiB of a local one.
  static uint64_t MapBytes(const Buffer& b);
  /// Calls fn(user address, bytes done so far, bytes) for each piece of [offset, offset +
  /// len) of `b` that is contiguous in the mmap (a piece never crosses a 4 KiB page of a
  /// sparse buffer).
  static void ForEachPiece(const Buffer& b, uint64_t offset, uint64_t len,
                           const std::function<void(uint8_t*, uint64_t, uint64_t)>& fn);
  grpc::Status PinInto(Buffer* b, v1::BufferInfo* resp, uint32_t* id);
  /// Undoes everything of `b` that exists; returns the first error.
  grpc::Status Teardown(Buffer& b);
  /// The refusal of a request that had taken `b` (not yet registered): Teardown(b) first,
  /// then `why` with its code and "; nothing was kept" after its message, or, if giving
  /// back failed too, what failed.
  grpc::Status Refuse(const grpc::Status& why, Buffer& b);
  Buffer* Find(uint32_t buffer);

  v1::Role role_;
  uint32_t domid_;
  std::string board_;
  LinuxXenDevices dev_;
  std::map<uint32_t, Buffer> buffers_;
  std::map<uint32_t, uint32_t> mappings_;  // dmahil.ko mapping -> buffer
  uint32_t next_buffer_ = 1;
};

}  // namespace dmahil::agent::linux_xen
