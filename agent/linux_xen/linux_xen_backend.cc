#include "agent/linux_xen/linux_xen_backend.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "common/fault_catalogue.h"
#include "common/xen_page.h"

// <xen/gntdev.h> uses these without defining them (Debian 12 libxen-dev; docs/architecture.md §9).
typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntalloc.h>
#include <xen/gntdev.h>

namespace dmahil::agent::linux_xen {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status Unimplemented(const std::string& m) { return Status(StatusCode::UNIMPLEMENTED, m); }

/// A variable-length ioctl argument: `Fixed` followed by count-1 more `Elem`s (the uapi
/// structs end in a one-element array).
template <typename Fixed, typename Elem>
std::vector<uint64_t> VarArg(size_t count) {
  const size_t bytes = sizeof(Fixed) + (count > 0 ? count - 1 : 0) * sizeof(Elem);
  return std::vector<uint64_t>((bytes + 7) / 8, 0);
}

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

uint32_t CpuLineSize() {
#if defined(__aarch64__)
  uint64_t ctr = 0;
  asm volatile("mrs %0, ctr_el0" : "=r"(ctr));
  return 4u << ((ctr >> 16) & 0xf);  // DminLine: log2 of words in the smallest D line
#else
  const long l = ::sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
  return l > 0 ? static_cast<uint32_t>(l) : 64;
#endif
}

// The catalogue faults dmahil.ko's `faults` mask reproduces (each entry's kmod_bit in
// common/fault_catalogue.cc), by their text ids, then any bit no entry claims.
std::vector<std::string> FaultNames(uint32_t faults) {
  std::vector<std::string> out;
  uint32_t unknown = 0;
  for (const FaultId id : FaultsOfKmodBits(faults, &unknown)) out.emplace_back(Fault(id).name);
  if (unknown != 0) out.push_back(fmt::format("unknown bits {:#x}", unknown));
  return out;
}

}  // namespace

uint64_t LinuxPageSize() {
  const long s = ::sysconf(_SC_PAGESIZE);
  return s > 0 ? static_cast<uint64_t>(s) : kXenPageSize;
}

size_t PagemapPfns(const void* addr, size_t pages, uint64_t* pfns) {
  const int fd = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const off_t off = static_cast<off_t>(reinterpret_cast<uintptr_t>(addr) / LinuxPageSize() * 8);
  const ssize_t n = ::pread(fd, pfns, pages * 8, off);
  ::close(fd);
  const size_t got = n > 0 ? static_cast<size_t>(n) / 8 : 0;
  for (size_t i = 0; i < got; ++i) {
    if ((pfns[i] >> 63) == 0) return i;  // not present
    pfns[i] &= (1ull << 55) - 1;
    if (pfns[i] == 0) return i;  // no CAP_SYS_ADMIN: the kernel hides frames
  }
  return got;
}

LinuxXenDevices OpenLinuxXenDevices(v1::Role role) {
  LinuxXenDevices d;
  auto open = [](const std::string& path, const char* module) {
    int err = 0;
    std::unique_ptr<DeviceFile> f = OpenDeviceFile(path, &err);
    if (!f)
      throw std::runtime_error(
          fmt::format("cannot open {}: {} (is {} loaded?)", path, std::strerror(err), module));
    return f;
  };
  if (role == v1::ROLE_GUEST) {
    d.gntalloc = open("/dev/xen/gntalloc", "xen-gntalloc");
  } else {
    d.gntdev = open("/dev/xen/gntdev", "xen-gntdev");
    d.kmod = std::make_shared<Kmod>(open(DMAHIL_DEVICE_PATH, "dmahil.ko"));
    dmahil_info info{};
    if (Status s = d.kmod->Info(&info); !s.ok()) throw std::runtime_error(s.error_message());
  }
  return d;
}

LinuxXenBackend::LinuxXenBackend(v1::Role role, uint32_t domid, std::string board,
                                 LinuxXenDevices devices)
    : role_(role), domid_(domid), board_(std::move(board)), dev_(std::move(devices)) {
  if (role_ == v1::ROLE_GUEST && !dev_.gntalloc)
    throw std::invalid_argument("linux-xen guest role needs /dev/xen/gntalloc");
  if (role_ == v1::ROLE_DOM0 && (!dev_.gntdev || !dev_.kmod))
    throw std::invalid_argument("linux-xen dom0 role needs /dev/xen/gntdev and /dev/dmahil");
  if (dev_.page_size < kXenPageSize || dev_.page_size % kXenPageSize != 0)
    throw std::invalid_argument(
        fmt::format("linux-xen: PAGE_SIZE {} is not a multiple of 4096", dev_.page_size));
}

uint64_t LinuxXenBackend::MapBytes(const Buffer& b) { return b.pages * b.stride; }

void LinuxXenBackend::ForEachPiece(const Buffer& b, uint64_t offset, uint64_t len,
                                   const std::function<void(uint8_t*, uint64_t, uint64_t)>& fn) {
  uint64_t done = 0;
  while (done < len) {
    const uint64_t pos = offset + done;
    const uint64_t in_page = pos % kXenPageSize;
    const uint64_t n =
        b.stride == kXenPageSize ? len - done : std::min(len - done, kXenPageSize - in_page);
    fn(b.addr + pos / kXenPageSize * b.stride + in_page, done, n);
    done += n;
  }
}

LinuxXenBackend::~LinuxXenBackend() {
  for (const auto& [mapping, buffer] : mappings_) {
    v1::Maintenance ignored;
    (void)dev_.kmod->Unmap(mapping, &ignored);
  }
  mappings_.clear();
  for (auto& [id, b] : buffers_) {
    b.mappings = 0;
    (void)Teardown(b);
  }
}

Status LinuxXenBackend::NeedRole(v1::Role role, const char* call) const {
  if (role_ == role) return Status::OK;
  return Status(StatusCode::FAILED_PRECONDITION,
                fmt::format("{} is a {} call; this agent is {}", call, v1::Role_Name(role),
                            v1::Role_Name(role_)));
}

LinuxXenBackend::Buffer* LinuxXenBackend::Find(uint32_t buffer) {
  auto it = buffers_.find(buffer);
  return it == buffers_.end() ? nullptr : &it->second;
}

v1::AgentInfo LinuxXenBackend::Info() {
  v1::AgentInfo info;
  info.set_role(role_);
  info.set_domid(domid_);
  info.set_backend("linux-xen");
  info.set_board(board_);
  info.set_line_size(CpuLineSize());
  info.set_page_size(static_cast<uint32_t>(::sysconf(_SC_PAGESIZE)));
  utsname u{};
  std::string rev = ::uname(&u) == 0 ? fmt::format("linux {}", u.release) : "linux ?";
  const std::string major = ReadLine("/sys/hypervisor/version/major");
  if (!major.empty())
    rev += fmt::format(" xen {}.{}{}", major, ReadLine("/sys/hypervisor/version/minor"),
                       ReadLine("/sys/hypervisor/version/extra"));
  info.set_revision(rev);
  if (dev_.block) {
    info.set_block_device(dev_.block->path());
    info.set_block_bytes(dev_.block->bytes());
    info.set_block_sector_size(dev_.block->sector_size());
    info.set_block_signature(dev_.block->signature());
    info.set_block_grants(dev_.block_grants);
  }
  if (dev_.kmod) {
    dmahil_info k{};
    if (dev_.kmod->Info(&k).ok()) {
      info.set_dma_coherent(k.coherent != 0);
      info.set_maintenance_audited(k.audit_hypercall != 0 && k.audit_arch_sync != 0);
      info.set_engine(k.engine);
      for (const std::string& f : FaultNames(k.faults)) info.add_module_faults(f);
    }
  }
  return info;
}

std::optional<uint64_t> LinuxXenBackend::BufferBytes(uint32_t buffer) {
  const Buffer* b = Find(buffer);
  return b ? std::optional<uint64_t>(b->pages * kXenPageSize) : std::nullopt;
}

Status LinuxXenBackend::AllocGrants(const v1::AllocGrantsRequest& req,
                                    v1::AllocGrantsResponse* resp) {
  if (Status s = NeedRole(v1::ROLE_GUEST, "AllocGrants"); !s.ok()) return s;
  if (req.grants_per_page() > 1)
    return Unimplemented(
        "grants_per_page 2 needs the same frame granted twice; gntalloc grants each page it "
        "allocates exactly once (drivers/xen/gntalloc.c)");
  // A placement is a request to the board's layout, which Xen decides: the guest sees only
  // gfns. dom0 reports the bus frames it got (MapForeign pfns, DmaMap bfns) and the oracle
  // judges the mapping by them (e.g. expect_bounce), so it is not checked here.
  const uint32_t n = req.pages();
  std::vector<uint64_t> arg = VarArg<ioctl_gntalloc_alloc_gref, uint32_t>(n);
  auto* a = reinterpret_cast<ioctl_gntalloc_alloc_gref*>(arg.data());
  a->domid = static_cast<uint16_t>(req.to_domid());
  a->flags = GNTALLOC_FLAG_WRITABLE;
  a->count = n;
  if (int err = dev_.gntalloc->Ioctl(IOCTL_GNTALLOC_ALLOC_GREF, a); err != 0)
    return ErrnoStatus(err, fmt::format("{} ALLOC_GREF ({} pages for domain {})",
                                        dev_.gntalloc->path(), n, req.to_domid()));
  Buffer b{Kind::kGranted};
  b.pages = n;
  b.stride = dev_.page_size;
  b.index = a->index;
  int err = 0;
  b.addr = static_cast<uint8_t*>(dev_.gntalloc->Map(MapBytes(b), a->index, &err));
  if (!b.addr) return Refuse(ErrnoStatus(err, fmt::format("mmap of {} granted pages", n)), b);
  // one Linux page per grant; the grant is the page's first 4 KiB frame
  std::vector<uint64_t> gfns(n);
  if (const size_t missing = dev_.pfns_of(b.addr, n, gfns.data()); missing < n)
    return Refuse(Status(StatusCode::INTERNAL,
                         fmt::format("no gfn for granted page {} in /proc/self/pagemap (the "
                                     "agent needs CAP_SYS_ADMIN)",
                                     missing)),
                  b);
  const uint32_t id = next_buffer_++;
  buffers_.emplace(id, b);
  resp->set_buffer(id);
  const uint64_t frames_per_page = dev_.page_size / kXenPageSize;
  for (uint32_t i = 0; i < n; ++i) {
    resp->add_grefs(a->gref_ids[i]);
    resp->add_gfns(gfns[i] * frames_per_page);
  }
  return Status::OK;
}

Status LinuxXenBackend::PinInto(Buffer* b, v1::BufferInfo* resp, uint32_t* id) {
  KmodPin pin;
  if (Status s = dev_.kmod->Pin(b->addr, b->pages, b->stride != kXenPageSize, &pin); !s.ok())
    return Refuse(s, *b);
  b->pin = pin.pin;
  *id = next_buffer_++;
  buffers_.emplace(*id, *b);
  resp->set_buffer(*id);
  for (uint64_t pfn : pin.pfns) resp->add_pfns(pfn);
  return Status::OK;
}

Status LinuxXenBackend::MapForeign(const v1::MapForeignRequest& req, v1::BufferInfo* resp) {
  if (Status s = NeedRole(v1::ROLE_DOM0, "MapForeign"); !s.ok()) return s;
  if (req.domid() >= 0x7FF0)  // DOMID_FIRST_RESERVED (xen/include/public/xen.h)
    return Status(
        StatusCode::INVALID_ARGUMENT,
        fmt::format("domain {} is not a guest's id: Xen reserves 0x7ff0 and above", req.domid()));
  const auto n = static_cast<uint32_t>(req.grefs_size());
  std::vector<uint64_t> arg = VarArg<ioctl_gntdev_map_grant_ref, ioctl_gntdev_grant_ref>(n);
  auto* a = reinterpret_cast<ioctl_gntdev_map_grant_ref*>(arg.data());
  a->count = n;
  for (uint32_t i = 0; i < n; ++i) {
    a->refs[i].domid = static_cast<domid_t>(req.domid());
    a->refs[i].ref = req.grefs(static_cast<int>(i));
  }
  if (int err = dev_.gntdev->Ioctl(IOCTL_GNTDEV_MAP_GRANT_REF, a); err != 0)
    return ErrnoStatus(err, fmt::format("{} MAP_GRANT_REF ({} grefs of domain {})",
                                        dev_.gntdev->path(), n, req.domid()));
  Buffer b{Kind::kForeign};
  b.pages = n;
  b.stride = dev_.page_size;
  b.index = a->index;
  int err = 0;
  b.addr = static_cast<uint8_t*>(dev_.gntdev->Map(MapBytes(b), a->index, &err));
  if (!b.addr) {
    // gntdev maps the grants (GNTTABOP_map_grant_ref) in mmap on auto-translated guests.
    return Refuse(
        Status(StatusCode::NOT_FOUND,
               fmt::format("Xen refused to map the {} grefs of domain {} (first {}): mmap "
                           "of {}: {} (errno {})",
                           n, req.domid(), req.grefs(0), dev_.gntdev->path(), std::strerror(err),
                           err)),
        b);
  }
  uint32_t id = 0;
  return PinInto(&b, resp, &id);
}

Status LinuxXenBackend::AllocLocal(const v1::AllocLocalRequest& req, v1::BufferInfo* resp) {
  if (req.placement() != v1::PLACEMENT_ANY)
    return Unimplemented(fmt::format(
        "placement {} for dom0's own pages on linux-xen: dom0's memory is where dom0_mem put "
        "it",
        v1::Placement_Name(req.placement())));
  Buffer b{Kind::kLocal};
  b.pages = req.pages();
  b.stride = kXenPageSize;  // dense: the kernel rounds the mmap up to whole Linux pages
  void* p = ::mmap(nullptr, MapBytes(b), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return ErrnoStatus(errno, fmt::format("mmap of {} local pages", b.pages));
  b.addr = static_cast<uint8_t*>(p);
  std::memset(b.addr, 0, b.pages * kXenPageSize);  // give every page its frame before the pin
  uint32_t id = 0;
  if (role_ == v1::ROLE_DOM0) return PinInto(&b, resp, &id);
  if (::mlock(b.addr, MapBytes(b)) < 0)  // the guest: pages stay put for O_DIRECT
    return Refuse(ErrnoStatus(errno, fmt::format("mlock of {} local pages", b.pages)), b);
  id = next_buffer_++;
  buffers_.emplace(id, b);
  resp->set_buffer(id);
  return Status::OK;
}

Status LinuxXenBackend::ComposeBuffer(const v1::ComposeBufferRequest&, v1::BufferInfo*) {
  return Unimplemented(
      "ComposeBuffer on linux-xen: dmahil.ko ABI 2 maps one pin at a time; mixed "
      "foreign/local requests run on virtual boards only");
}

Status LinuxXenBackend::Teardown(Buffer& b) {
  Status first = Status::OK;
  auto keep = [&first](const Status& s) {
    if (first.ok() && !s.ok()) first = s;
  };
  if (b.pin != 0) {
    keep(dev_.kmod->Unpin(b.pin));
    b.pin = 0;
  }
  if (b.addr) {
    if (b.kind == Kind::kLocal) {
      if (::munmap(b.addr, MapBytes(b)) < 0) keep(ErrnoStatus(errno, "munmap"));
    } else {
      DeviceFile& f = b.kind == Kind::kGranted ? *dev_.gntalloc : *dev_.gntdev;
      if (int err = f.Unmap(b.addr, MapBytes(b)); err != 0)
        keep(ErrnoStatus(err, fmt::format("munmap of {}", f.path())));
    }
    b.addr = nullptr;
  }
  if (b.kind == Kind::kGranted) {
    ioctl_gntalloc_dealloc_gref a{};
    a.index = b.index;
    a.count = static_cast<uint32_t>(b.pages);
    if (int err = dev_.gntalloc->Ioctl(IOCTL_GNTALLOC_DEALLOC_GREF, &a); err != 0)
      keep(ErrnoStatus(err, fmt::format("{} DEALLOC_GREF", dev_.gntalloc->path())));
  } else if (b.kind == Kind::kForeign) {
    ioctl_gntdev_unmap_grant_ref a{};
    a.index = b.index;
    a.count = static_cast<uint32_t>(b.pages);
    if (int err = dev_.gntdev->Ioctl(IOCTL_GNTDEV_UNMAP_GRANT_REF, &a); err != 0)
      keep(ErrnoStatus(err, fmt::format("{} UNMAP_GRANT_REF", dev_.gntdev->path())));
  }
  return first;
}

Status LinuxXenBackend::Refuse(const Status& why, Buffer& b) {
  const Status undo = Teardown(b);
  if (undo.ok()) return Status(why.error_code(), why.error_message() + "; nothing was kept");
  return Status(why.error_code(),
                fmt::format("{}; giving back what this request had taken failed too, so some of "
                            "it may be kept until the agent exits: {}",
                            why.error_message(), undo.error_message()));
}

Status LinuxXenBackend::ReleaseBuffer(uint32_t buffer) {
  Buffer* b = Find(buffer);
  if (!b) return Status(StatusCode::NOT_FOUND, fmt::format("no buffer {}", buffer));
  if (b->mappings > 0)
    return Status(
        StatusCode::FAILED_PRECONDITION,
        fmt::format("buffer {} has {} live DMA mappings: unmap them first", buffer, b->mappings));
  // The pin first, on its own: while dmahil.ko holds the pages (EBUSY: a mapping of the pin
  // lives in the module), unmapping them under it would lose the pin for good. Refused
  // there, the buffer stays whole and a later release can finish.
  if (b->pin != 0) {
    if (Status s = dev_.kmod->Unpin(b->pin); !s.ok())
      return Status(s.error_code(), fmt::format("{}; nothing was released: buffer {} is kept "
                                                "whole (release it again once the pin is free)",
                                                s.error_message(), buffer));
    b->pin = 0;
  }
  Status s = Teardown(*b);
  buffers_.erase(buffer);
  if (s.ok()) return s;
  return Status(s.error_code(), fmt::format("{}; buffer {} is released as far as the kernel let "
                                            "it (the handle is gone)",
                                            s.error_message(), buffer));
}

Status LinuxXenBackend::DmaMap(const v1::DmaMapRequest& req, v1::DmaMapping* resp) {
  if (Status s = NeedRole(v1::ROLE_DOM0, "DmaMap"); !s.ok()) return s;
  Buffer* b = Find(req.buffer());
  if (!b) return Status(StatusCode::NOT_FOUND, fmt::format("no buffer {}", req.buffer()));
  if (Status s = dev_.kmod->Map(b->pin, b->pages, req.direction(), req.offset(), req.length(),
                                req.sg(), req.dma_mask_bits(), resp);
      !s.ok())
    return s;
  mappings_[resp->mapping()] = req.buffer();
  ++b->mappings;
  return Status::OK;
}

Status LinuxXenBackend::DmaSync(uint32_t mapping, v1::SyncFor for_, v1::DmaSyncResponse* resp) {
  if (Status s = NeedRole(v1::ROLE_DOM0, "DmaSync"); !s.ok()) return s;
  if (!mappings_.count(mapping))
    return Status(StatusCode::NOT_FOUND, fmt::format("no DMA mapping {}", mapping));
  return dev_.kmod->Sync(mapping, for_, resp->mutable_maintenance());
}

Status LinuxXenBackend::DmaUnmap(uint32_t mapping, v1::DmaUnmapResponse* resp) {
  if (Status s = NeedRole(v1::ROLE_DOM0, "DmaUnmap"); !s.ok()) return s;
  auto it = mappings_.find(mapping);
  if (it == mappings_.end())
    return Status(StatusCode::NOT_FOUND, fmt::format("no DMA mapping {}", mapping));
  Status s = dev_.kmod->Unmap(mapping, resp->mutable_maintenance());
  // dmahil.ko unmaps before it copies the records out: after any error but an unknown
  // handle or a bad argument, the mapping is gone and the buffer must be releasable.
  if (s.ok() || (s.error_code() != grpc::StatusCode::NOT_FOUND &&
                 s.error_code() != grpc::StatusCode::INVALID_ARGUMENT)) {
    if (Buffer* b = Find(it->second)) --b->mappings;
    mappings_.erase(it);
  }
  return s;
}

Status LinuxXenBackend::CpuWrite(uint32_t buffer, uint64_t offset, const uint8_t* src,
                                 uint64_t len) {
  Buffer* b = Find(buffer);
  if (!b) return Status(StatusCode::NOT_FOUND, fmt::format("no buffer {}", buffer));
  ForEachPiece(*b, offset, len,
               [src](uint8_t* p, uint64_t done, uint64_t n) { std::memcpy(p, src + done, n); });
  return Status::OK;
}

Status LinuxXenBackend::CpuRead(uint32_t buffer, uint64_t offset, uint8_t* dst, uint64_t len) {
  Buffer* b = Find(buffer);
  if (!b) return Status(StatusCode::NOT_FOUND, fmt::format("no buffer {}", buffer));
  ForEachPiece(*b, offset, len,
               [dst](uint8_t* p, uint64_t done, uint64_t n) { std::memcpy(dst + done, p, n); });
  return Status::OK;
}

Status LinuxXenBackend::CpuCleanInvalidate(uint32_t buffer, uint64_t offset, uint64_t len) {
  Buffer* b = Find(buffer);
  if (!b) return Status(StatusCode::NOT_FOUND, fmt::format("no buffer {}", buffer));
#if defined(__aarch64__)
  const uint64_t line = CpuLineSize();
  ForEachPiece(*b, offset, len, [line](uint8_t* piece, uint64_t, uint64_t n) {
    const auto start = reinterpret_cast<uintptr_t>(piece) & ~(line - 1);
    const auto end = reinterpret_cast<uintptr_t>(piece + n);
    for (uintptr_t p = start; p < end; p += line) asm volatile("dc civac, %0" ::"r"(p) : "memory");
  });
  asm volatile("dsb sy" ::: "memory");
  return Status::OK;
#else
  (void)offset;
  (void)len;
  return Status(StatusCode::FAILED_PRECONDITION,
                "DC CIVAC from user space is arm64-only (SCTLR_EL1.UCI); this agent is not "
                "running on arm64");
#endif
}

Status LinuxXenBackend::WatchDevice(const std::string& device, v1::WatchDeviceResponse* resp) {
  if (!dev_.kmod)
    return Status(grpc::StatusCode::FAILED_PRECONDITION, "WatchDevice: no dmahil.ko here");
  bool direct = false;
  Status s = dev_.kmod->Watch(device, &direct);
  resp->set_dma_direct(direct);
  return s;
}

Status LinuxXenBackend::ReadDeviceOps(v1::DeviceOps* out) {
  if (!dev_.kmod)
    return Status(grpc::StatusCode::FAILED_PRECONDITION, "ReadDeviceOps: no dmahil.ko here");
  return dev_.kmod->ReadWatch(out);
}

Status LinuxXenBackend::BlockIo(const v1::BlockIoRequest& req, v1::BlockIoResponse* resp) {
  if (!dev_.block)
    return Status(StatusCode::FAILED_PRECONDITION,
                  "BlockIo: this agent has no block device (dmahil-agent --block-device)");
  Buffer* b = Find(req.buffer());
  if (!b) return Status(StatusCode::NOT_FOUND, fmt::format("no buffer {}", req.buffer()));
  if (b->kind != Kind::kLocal)
    return Status(StatusCode::FAILED_PRECONDITION,
                  fmt::format("BlockIo: buffer {} is granted or foreign; block I/O goes from a "
                              "local buffer (AllocLocal)",
                              req.buffer()));
  uint64_t elapsed_us = 0;
  Status s = dev_.block->Transfer(req.op() == v1::BLOCK_WRITE, b->addr + req.offset(), req.length(),
                                  req.disk_offset(), std::max(1u, req.segments()), &elapsed_us);
  resp->set_elapsed_us(elapsed_us);
  return s;
}

}  // namespace dmahil::agent::linux_xen
