#include "agent/linux_xen/kmod_client.h"
#include "common/xen_page.h"

#include <cerrno>
#include <cstring>
#include <map>
#include <utility>

#include <fmt/format.h>

namespace dmahil::agent::linux_xen {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status Invalid(const std::string& m) { return Status(StatusCode::INVALID_ARGUMENT, m); }

const char* DirName(uint32_t d) {
  switch (d) {
    case DMAHIL_DMA_BIDIRECTIONAL:
      return "DMA_BIDIRECTIONAL";
    case DMAHIL_DMA_TO_DEVICE:
      return "DMA_TO_DEVICE";
    case DMAHIL_DMA_FROM_DEVICE:
      return "DMA_FROM_DEVICE";
    default:
      return "?";
  }
}

}  // namespace

Status ErrnoStatus(int err, const std::string& what) {
  StatusCode code = StatusCode::INTERNAL;
  switch (err) {
    case EINVAL:
      code = StatusCode::INVALID_ARGUMENT;
      break;
    case ENOENT:
      code = StatusCode::NOT_FOUND;
      break;
    case EBUSY:
    case ENODEV:
      code = StatusCode::FAILED_PRECONDITION;
      break;
    case ENOMEM:
    case ENOSPC:
      code = StatusCode::RESOURCE_EXHAUSTED;
      break;
    case EACCES:
    case EPERM:
      code = StatusCode::PERMISSION_DENIED;
      break;
    case EOPNOTSUPP:
      code = StatusCode::UNIMPLEMENTED;
      break;
    default:
      break;
  }
  return Status(code, fmt::format("{}: {} (errno {})", what, std::strerror(err), err));
}

bool ToKernelDirection(v1::DmaDirection dir, uint32_t* out) {
  switch (dir) {
    case v1::DMA_BIDIRECTIONAL:
      *out = DMAHIL_DMA_BIDIRECTIONAL;
      return true;
    case v1::DMA_TO_DEVICE:
      *out = DMAHIL_DMA_TO_DEVICE;
      return true;
    case v1::DMA_FROM_DEVICE:
      *out = DMAHIL_DMA_FROM_DEVICE;
      return true;
    default:
      return false;
  }
}

Kmod::Kmod(std::unique_ptr<DeviceFile> file) : file_(std::move(file)) {}

Status Kmod::Call(unsigned long request, void* arg, const std::string& what) {
  const int err = file_->Ioctl(request, arg);
  if (err != 0) return ErrnoStatus(err, fmt::format("{} {}", file_->path(), what));
  return Status::OK;
}

Status Kmod::Info(dmahil_info* out) {
  std::memset(out, 0, sizeof(*out));
  if (Status s = Call(DMAHIL_IOC_INFO, out, "INFO"); !s.ok()) return s;
  out->engine[sizeof(out->engine) - 1] = '\0';
  if (out->abi_version != DMAHIL_ABI_VERSION)
    return Status(StatusCode::FAILED_PRECONDITION,
                  fmt::format("{} speaks ABI {}, this agent ABI {}: rebuild dmahil.ko and the "
                              "agent from the same tree",
                              file_->path(), out->abi_version, DMAHIL_ABI_VERSION));
  // Both or nothing: with only the hypercall probe, dom0's own and bounced pages would
  // show no maintenance and fail the audit falsely.
  audited_ = out->audit_hypercall != 0 && out->audit_arch_sync != 0;
  return Status::OK;
}

Status Kmod::Pin(const void* uaddr, uint64_t pages, bool sparse, KmodPin* out) {
  const auto addr = reinterpret_cast<uintptr_t>(uaddr);
  if (pages == 0 || pages > DMAHIL_MAX_PIN_PAGES)
    return Invalid(fmt::format("pin of {} pages: must be 1..{}", pages, DMAHIL_MAX_PIN_PAGES));
  if (addr % kXenPageSize != 0)
    return Invalid(fmt::format("pin at {:#x}: not 4 KiB aligned", addr));
  out->pfns.assign(pages, 0);
  out->bfns.assign(pages, 0);
  dmahil_pin arg{};
  arg.uaddr = addr;
  arg.pages = static_cast<uint32_t>(pages);
  arg.pfns_ptr = reinterpret_cast<uintptr_t>(out->pfns.data());
  arg.bfns_ptr = reinterpret_cast<uintptr_t>(out->bfns.data());
  arg.flags = sparse ? DMAHIL_PIN_SPARSE : 0;
  if (Status s =
          Call(DMAHIL_IOC_PIN, &arg,
               fmt::format("PIN ({} pages at {:#x}{})", pages, addr, sparse ? ", sparse" : ""));
      !s.ok())
    return s;
  if (arg.pin == 0) return Status(StatusCode::INTERNAL, "dmahil.ko PIN returned handle 0");
  out->pin = arg.pin;
  out->page_size = arg.page_size;
  return Status::OK;
}

Status Kmod::Unpin(uint32_t pin) {
  uint32_t arg = pin;
  return Call(DMAHIL_IOC_UNPIN, &arg, fmt::format("UNPIN (pin {})", pin));
}

namespace {

/// One maintenance record of dmahil.ko (struct dmahil_cache_op, or a DMAHIL_DEV_MAINT
/// struct dmahil_dev_op): `op` DMAHIL_CACHE_* bits, `kind` DMAHIL_OP_*.
v1::CacheOp CacheOpOf(uint64_t addr, uint32_t length, uint32_t op, uint32_t kind) {
  v1::CacheOp c;
  c.set_kind(kind == DMAHIL_OP_HYPERCALL   ? v1::CACHE_OP_HYPERCALL
             : kind == DMAHIL_OP_ARCH_SYNC ? v1::CACHE_OP_ARCH_SYNC
                                           : v1::CACHE_OP_KIND_UNSPECIFIED);
  c.set_clean((op & DMAHIL_CACHE_CLEAN) != 0);
  c.set_invalidate((op & DMAHIL_CACHE_INVAL) != 0);
  c.set_addr(addr);
  c.set_length(length);
  return c;
}

}  // namespace

void Kmod::ToMaintenance(const std::vector<dmahil_cache_op>& ops, const dmahil_ops_out& out,
                         v1::Maintenance* m) const {
  m->set_audited(audited_);
  m->set_dropped(out.dropped);
  const uint32_t n = std::min<uint32_t>(out.count, static_cast<uint32_t>(ops.size()));
  for (uint32_t i = 0; i < n; ++i)
    *m->add_ops() = CacheOpOf(ops[i].addr, ops[i].length, ops[i].op, ops[i].kind);
}

Status Kmod::Map(uint32_t pin, uint64_t pin_pages, v1::DmaDirection dir, uint64_t offset,
                 uint64_t length, bool sg, uint32_t mask_bits, v1::DmaMapping* out) {
  uint32_t kdir = 0;
  if (!ToKernelDirection(dir, &kdir))
    return Invalid(fmt::format("map: unknown direction {}", static_cast<int>(dir)));
  if (length == 0) return Invalid("map of 0 bytes");
  if (offset > pin_pages * kXenPageSize || length > pin_pages * kXenPageSize - offset)
    return Invalid(fmt::format("map of [{:#x}, +{:#x}) outside the pin's {} bytes", offset, length,
                               pin_pages * kXenPageSize));
  if (mask_bits != 0 && (mask_bits < 32 || mask_bits > 64))
    return Invalid(fmt::format("dma mask of {} bits: must be 0 or 32..64", mask_bits));
  std::vector<dmahil_seg> segs(DMAHIL_MAX_SEGMENTS);
  std::vector<dmahil_cache_op> ops(kMaxMaintenanceOps);
  dmahil_map arg{};
  arg.pin = pin;
  arg.direction = kdir;
  arg.offset = offset;
  arg.length = length;
  arg.sg = sg ? 1 : 0;
  arg.mask_bits = mask_bits;
  arg.nsegs = static_cast<uint32_t>(segs.size());
  arg.segs_ptr = reinterpret_cast<uintptr_t>(segs.data());
  arg.ops.ptr = reinterpret_cast<uintptr_t>(ops.data());
  arg.ops.cap = static_cast<uint32_t>(ops.size());
  if (Status s = Call(DMAHIL_IOC_MAP, &arg,
                      fmt::format("MAP (pin {}, {} bytes at {:#x}, {}{})", pin, length, offset,
                                  DirName(kdir), sg ? ", sg" : ""));
      !s.ok())
    return s;
  if (arg.mapping == 0 || arg.nsegs == 0 || arg.nsegs > segs.size()) {
    // Refused: a live mapping would keep the pin from being unpinned (EBUSY), so give it
    // back before saying no.
    const std::string what =
        fmt::format("dmahil.ko MAP (pin {}) returned mapping {} with {} segments (expected 1..{})",
                    pin, arg.mapping, arg.nsegs, segs.size());
    if (arg.mapping == 0)
      return Status(StatusCode::INTERNAL,
                    fmt::format("{}; no handle came back, so there is nothing to unmap", what));
    v1::Maintenance ignored;
    if (Status u = Unmap(arg.mapping, &ignored); !u.ok())
      return Status(StatusCode::INTERNAL,
                    fmt::format("{}; unmapping it failed too ({}), so mapping {} may still hold "
                                "pin {} (an unpin is refused while it does)",
                                what, u.error_message(), arg.mapping, pin));
    return Status(
        StatusCode::INTERNAL,
        fmt::format("{}; mapping {} was unmapped, nothing stays mapped", what, arg.mapping));
  }
  out->set_mapping(arg.mapping);
  for (uint32_t i = 0; i < arg.nsegs; ++i) {
    v1::DmaSegment* s = out->add_segments();
    s->set_offset(segs[i].offset);
    s->set_length(segs[i].length);
    s->set_dma_addr(segs[i].dma_addr);
    s->set_pfn(segs[i].pfn);
    s->set_bfn(segs[i].bfn);
    s->set_foreign((segs[i].flags & DMAHIL_SEG_FOREIGN) != 0);
    s->set_bounced((segs[i].flags & DMAHIL_SEG_BOUNCED) != 0);
    s->set_write_refused((segs[i].flags & DMAHIL_SEG_WRITE_REFUSED) != 0);
    s->set_bfn_pfn_valid((segs[i].flags & DMAHIL_SEG_BFN_PFN_VALID) != 0);
  }
  ToMaintenance(ops, arg.ops, out->mutable_maintenance());
  return Status::OK;
}

Status Kmod::Sync(uint32_t mapping, v1::SyncFor for_, v1::Maintenance* maintenance) {
  if (for_ != v1::SYNC_FOR_CPU && for_ != v1::SYNC_FOR_DEVICE)
    return Invalid(fmt::format("sync: unknown target {}", static_cast<int>(for_)));
  std::vector<dmahil_cache_op> ops(kMaxMaintenanceOps);
  dmahil_sync arg{};
  arg.mapping = mapping;
  arg.for_ = for_ == v1::SYNC_FOR_CPU ? DMAHIL_SYNC_FOR_CPU : DMAHIL_SYNC_FOR_DEVICE;
  arg.ops.ptr = reinterpret_cast<uintptr_t>(ops.data());
  arg.ops.cap = static_cast<uint32_t>(ops.size());
  if (Status s = Call(DMAHIL_IOC_SYNC, &arg,
                      fmt::format("SYNC (mapping {}, for {})", mapping,
                                  for_ == v1::SYNC_FOR_CPU ? "cpu" : "device"));
      !s.ok())
    return s;
  ToMaintenance(ops, arg.ops, maintenance);
  return Status::OK;
}

Status Kmod::Unmap(uint32_t mapping, v1::Maintenance* maintenance) {
  std::vector<dmahil_cache_op> ops(kMaxMaintenanceOps);
  dmahil_unmap arg{};
  arg.mapping = mapping;
  arg.ops.ptr = reinterpret_cast<uintptr_t>(ops.data());
  arg.ops.cap = static_cast<uint32_t>(ops.size());
  if (Status s = Call(DMAHIL_IOC_UNMAP, &arg, fmt::format("UNMAP (mapping {})", mapping)); !s.ok())
    return s;
  ToMaintenance(ops, arg.ops, maintenance);
  return Status::OK;
}

Status Kmod::Watch(const std::string& device, bool* direct) {
  *direct = false;
  dmahil_watch arg{};
  if (device.size() >= sizeof(arg.device))
    return Invalid(fmt::format("watch: device name \"{}\" is {} bytes; at most {}", device,
                               device.size(), sizeof(arg.device) - 1));
  std::copy(device.begin(), device.end(), arg.device);
  arg.on = device.empty() ? 0 : 1;
  Status s = Call(DMAHIL_IOC_WATCH, &arg,
                  device.empty() ? std::string("WATCH (stop)") : fmt::format("WATCH {}", device));
  *direct = s.ok() && arg.direct != 0;
  if (s.ok()) {
    // The module discards its records when a watch starts (and nothing can be read once it
    // stops): the records a failed ReadWatch kept are discarded too.
    watch_kept_.clear();
    watch_kept_dropped_ = 0;
  }
  return s;
}

namespace {

v1::DmaDirection FromKernelDirection(uint32_t dir) {
  switch (dir) {
    case DMAHIL_DMA_BIDIRECTIONAL:
      return v1::DMA_BIDIRECTIONAL;
    case DMAHIL_DMA_TO_DEVICE:
      return v1::DMA_TO_DEVICE;
    case DMAHIL_DMA_FROM_DEVICE:
      return v1::DMA_FROM_DEVICE;
    default:
      return v1::DMA_DIRECTION_UNSPECIFIED;
  }
}

v1::DeviceOpKind FromKernelOp(uint32_t op) {
  switch (op) {
    case DMAHIL_DEV_MAP:
      return v1::DEVICE_OP_MAP;
    case DMAHIL_DEV_UNMAP:
      return v1::DEVICE_OP_UNMAP;
    case DMAHIL_DEV_SYNC_FOR_CPU:
      return v1::DEVICE_OP_SYNC_FOR_CPU;
    case DMAHIL_DEV_SYNC_FOR_DEVICE:
      return v1::DEVICE_OP_SYNC_FOR_DEVICE;
    default:
      return v1::DEVICE_OP_UNSPECIFIED;
  }
}

}  // namespace

Status Kmod::ReadWatch(v1::DeviceOps* out) {
  // Records a failed read took from the module come first (oldest first, as they were).
  std::vector<dmahil_dev_op> recs = std::move(watch_kept_);
  uint64_t dropped = std::exchange(watch_kept_dropped_, 0);
  watch_kept_.clear();
  std::vector<dmahil_dev_op> chunk(DMAHIL_DEV_RECORDS);
  for (;;) {
    dmahil_watch_read arg{};
    arg.ptr = reinterpret_cast<uintptr_t>(chunk.data());
    arg.cap = static_cast<uint32_t>(chunk.size());
    if (Status s = Call(DMAHIL_IOC_WATCH_READ, &arg, "WATCH_READ"); !s.ok()) {
      // The module removed what earlier calls of this read returned: keep it for the next
      // read rather than lose it, at most kMaxKeptWatchRecords (the newest beyond count as
      // dropped, as the module's full ring counts them).
      const size_t n = recs.size();
      if (n > kMaxKeptWatchRecords) {
        dropped += n - kMaxKeptWatchRecords;
        recs.resize(kMaxKeptWatchRecords);
      }
      watch_kept_ = std::move(recs);
      watch_kept_dropped_ = dropped;
      if (n == 0 && dropped == 0) return s;
      return Status(s.error_code(),
                    fmt::format("{}; the {} records (and {} dropped) read before it are kept "
                                "for the next read",
                                s.error_message(), watch_kept_.size(), watch_kept_dropped_));
    }
    recs.insert(recs.end(), chunk.begin(), chunk.begin() + arg.count);
    dropped += arg.dropped;
    if (arg.count < arg.cap) break;
  }
  // The kernel records a call's maintenance while the op runs and the op when it returns,
  // possibly interleaved with other CPUs' calls: group by call.
  std::map<uint64_t, std::vector<v1::CacheOp>> maintenance;
  for (const dmahil_dev_op& r : recs) {
    if (r.op != DMAHIL_DEV_MAINT) continue;
    maintenance[r.call].push_back(CacheOpOf(r.dma_addr, r.length, r.dir, r.flags));
  }
  for (const dmahil_dev_op& r : recs) {
    if (r.op == DMAHIL_DEV_MAINT) continue;
    v1::DeviceOp* op = out->add_ops();
    op->set_call(r.call);
    op->set_kind(FromKernelOp(r.op));
    op->set_direction(FromKernelDirection(r.dir));
    op->set_dma_addr(r.dma_addr);
    op->set_length(r.length);
    if (r.op == DMAHIL_DEV_MAP) {
      op->set_pfn(r.pfn);
      op->set_bfn(r.bfn);
      op->set_expected_dma_addr(r.expected);
      op->set_foreign((r.flags & DMAHIL_SEG_FOREIGN) != 0);
      op->set_bounced((r.flags & DMAHIL_SEG_BOUNCED) != 0);
      op->set_bfn_pfn_valid((r.flags & DMAHIL_SEG_BFN_PFN_VALID) != 0);
    }
    if (auto it = maintenance.find(r.call); it != maintenance.end()) {
      for (const v1::CacheOp& c : it->second) *op->add_maintenance() = c;
      maintenance.erase(it);  // a call's maintenance goes to its first op
    }
  }
  out->set_dropped(dropped);
  out->set_maintenance_audited(audited_);
  return Status::OK;
}

Status Kmod::Xfer(uint64_t dma_addr, void* buf, uint32_t length, bool device_writes) {
  if (length == 0 || length > DMAHIL_MAX_XFER_BYTES)
    return Invalid(
        fmt::format("engine transfer of {} bytes: must be 1..{}", length, DMAHIL_MAX_XFER_BYTES));
  dmahil_xfer arg{};
  arg.dma_addr = dma_addr;
  arg.uaddr = reinterpret_cast<uintptr_t>(buf);
  arg.length = length;
  arg.op = device_writes ? DMAHIL_XFER_WRITE : DMAHIL_XFER_READ;
  return Call(DMAHIL_IOC_XFER, &arg,
              fmt::format("XFER ({} {} bytes at bus address {:#x})",
                          device_writes ? "device write of" : "device read of", length, dma_addr));
}

}  // namespace dmahil::agent::linux_xen
