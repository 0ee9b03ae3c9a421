#include "agent/sim_backend.h"

#include <algorithm>

#include <fmt/format.h>

#include "sim/chunks.h"

namespace dmahil::agent {
namespace {

using grpc::Status;
using grpc::StatusCode;
using sim::kXenPageShift;
using sim::kXenPageSize;

/// `s` with "; <note>" after its message: what a refused request gave back.
Status WithNote(const Status& s, const std::string& note) {
  return Status(s.error_code(), s.error_message() + "; " + note);
}

}  // namespace

Status ToStatus(const sim::SimError& e) {
  switch (e.code()) {
    case sim::ErrorCode::kInvalidArgument:
      return Status(StatusCode::INVALID_ARGUMENT, e.what());
    case sim::ErrorCode::kNotFound:
      return Status(StatusCode::NOT_FOUND, e.what());
    case sim::ErrorCode::kFailedPrecondition:
      return Status(StatusCode::FAILED_PRECONDITION, e.what());
    case sim::ErrorCode::kOutOfRange:
      return Status(StatusCode::OUT_OF_RANGE, e.what());
    case sim::ErrorCode::kResourceExhausted:
      return Status(StatusCode::RESOURCE_EXHAUSTED, e.what());
  }
  return Status(StatusCode::INTERNAL, e.what());
}

SimBackend::SimBackend(sim::VirtualBoard& board, v1::Role role)
    : board_(board), role_(role), domid_(role == v1::ROLE_DOM0 ? sim::kDom0 : sim::kDomU) {}

v1::AgentInfo SimBackend::Info() {
  v1::AgentInfo info;
  info.set_role(role_);
  info.set_domid(domid_);
  info.set_backend("sim");
  info.set_board(board_.board().name());
  info.set_line_size(board_.board().cache().line_size());
  info.set_page_size(role_ == v1::ROLE_DOM0 ? board_.board().linux_page_size() : 4096);
  info.set_revision(board_.faults().ToString());
  // The model's engine sees memory as the board file says (sim/device_view.h).
  info.set_dma_coherent(board_.board().dma().coherent());
  return info;
}

std::optional<uint64_t> SimBackend::BufferBytes(uint32_t buffer) {
  auto it = buffers_.find(buffer);
  if (it == buffers_.end()) return std::nullopt;
  return it->second.frames.size() * kXenPageSize;
}

Status SimBackend::AllocGrants(const v1::AllocGrantsRequest& req, v1::AllocGrantsResponse* resp) {
  std::lock_guard lock(board_.mutex());
  const uint32_t mask =
      req.dma_mask_bits() != 0 ? req.dma_mask_bits() : board_.board().dma().mask_bits();
  const uint32_t grants = std::max(req.grants_per_page(), 1u);
  Buffer b{Kind::kGranted, {}, {}, 0, {}, 0};
  try {
    b.frames = board_.xen().PopulateDomU(req.pages(), req.placement(), board_.board().dma(), mask);
    for (uint32_t k = 0; k < grants; ++k)
      for (uint64_t gfn : b.frames)
        b.grefs.push_back(board_.xen().GrantAccess(domid_, gfn, req.to_domid()));
  } catch (const sim::SimError& e) {
    // Roll back (e.g. the grant table fills up mid-request): no grant was mapped yet, the
    // board lock is held, so every gref ends and every frame goes back to Xen.
    for (uint32_t gref : b.grefs) board_.xen().EndAccess(domid_, gref);
    board_.xen().DepopulateDomU(b.frames);
    return WithNote(ToStatus(e),
                    fmt::format("nothing was kept (the {} grefs and {} domU frames this request "
                                "had taken were given back)",
                                b.grefs.size(), b.frames.size()));
  }
  const uint32_t handle = next_buffer_++;
  resp->set_buffer(handle);
  for (uint32_t gref : b.grefs) resp->add_grefs(gref);
  for (uint64_t gfn : b.frames) resp->add_gfns(gfn);
  buffers_.emplace(handle, std::move(b));
  return Status::OK;
}

Status SimBackend::Register(Buffer b, v1::BufferInfo* resp) {
  const uint32_t handle = next_buffer_++;
  resp->set_buffer(handle);
  for (uint64_t pfn : b.frames) resp->add_pfns(pfn);
  buffers_.emplace(handle, std::move(b));
  return Status::OK;
}

Status SimBackend::MapForeign(const v1::MapForeignRequest& req, v1::BufferInfo* resp) {
  std::lock_guard lock(board_.mutex());
  Buffer b{Kind::kForeign, {}, {}, 0, {}, 0};
  std::vector<uint64_t> pfns;
  try {
    pfns = board_.dma().AllocBallooned(static_cast<uint32_t>(req.grefs_size()));
    for (int i = 0; i < req.grefs_size(); ++i) {
      const uint64_t mfn = board_.xen().MapGrantRef(req.domid(), req.grefs(i), pfns[i]);
      board_.dma().SetForeignP2m(pfns[i], mfn);
      b.frames.push_back(pfns[i]);
    }
  } catch (const sim::SimError& e) {
    for (uint64_t pfn : b.frames) {  // roll back
      board_.xen().UnmapGrantRef(pfn);
      board_.dma().ClearForeignP2m(pfn);
    }
    for (uint64_t pfn : pfns) board_.dma().FreeBallooned(pfn);
    return WithNote(ToStatus(e),
                    fmt::format("nothing stays mapped (the {} grefs mapped before it were "
                                "unmapped and the {} ballooned pfns freed)",
                                b.frames.size(), pfns.size()));
  }
  return Register(std::move(b), resp);
}

Status SimBackend::AllocLocal(const v1::AllocLocalRequest& req, v1::BufferInfo* resp) {
  std::lock_guard lock(board_.mutex());
  Buffer b{Kind::kLocal, {}, {}, 0, {}, 0};
  try {
    b.frames = board_.dma().AllocPages(req.pages(), req.placement(), req.dma_mask_bits());
  } catch (const sim::SimError& e) {
    return ToStatus(e);
  }
  return Register(std::move(b), resp);
}

Status SimBackend::ComposeBuffer(const v1::ComposeBufferRequest& req, v1::BufferInfo* resp) {
  std::lock_guard lock(board_.mutex());
  Buffer c{Kind::kComposite, {}, {}, 0, {}, 0};
  for (const v1::PageRef& p : req.pages()) {
    Buffer& src = buffers_.at(p.buffer());  // checked by the service
    if (src.kind == Kind::kGranted)
      return Status(StatusCode::FAILED_PRECONDITION,
                    fmt::format("buffer {} is a guest grant buffer, not dom0 memory", p.buffer()));
    c.frames.push_back(src.frames[p.page()]);
    c.sources.push_back(p.buffer());
  }
  for (uint32_t src : c.sources) ++buffers_.at(src).users;
  return Register(std::move(c), resp);
}

Status SimBackend::ReleaseBuffer(uint32_t buffer) {
  std::lock_guard lock(board_.mutex());
  auto it = buffers_.find(buffer);
  if (it == buffers_.end())
    return Status(StatusCode::NOT_FOUND, fmt::format("unknown buffer {}", buffer));
  Buffer& b = it->second;
  if (b.users != 0)
    return Status(StatusCode::FAILED_PRECONDITION,
                  fmt::format("buffer {} has pages in {} composed buffer page(s); release those "
                              "first",
                              buffer, b.users));
  if (b.dma_mappings != 0)
    return Status(
        StatusCode::FAILED_PRECONDITION,
        fmt::format("buffer {} has {} DMA mappings; unmap them first", buffer, b.dma_mappings));
  try {
    if (b.kind == Kind::kGranted) {
      for (uint32_t gref : b.grefs)  // all or nothing: refuse before ending any grant
        if (board_.xen().GrantMapped(domid_, gref))
          return Status(StatusCode::FAILED_PRECONDITION,
                        fmt::format("buffer {}: gref {} is still mapped by the other domain; "
                                    "nothing was released",
                                    buffer, gref));
      for (uint32_t gref : b.grefs) board_.xen().EndAccess(domid_, gref);
      board_.xen().DepopulateDomU(b.frames);
    } else if (b.kind == Kind::kForeign) {
      for (uint64_t pfn : b.frames) {
        board_.xen().UnmapGrantRef(pfn);
        board_.dma().ClearForeignP2m(pfn);
        board_.dma().FreeBallooned(pfn);
      }
    } else if (b.kind == Kind::kLocal) {
      for (uint64_t pfn : b.frames) board_.dma().FreePage(pfn);
    } else {
      for (uint32_t src : b.sources) --buffers_.at(src).users;
    }
  } catch (const sim::SimError& e) {
    return ToStatus(e);
  }
  buffers_.erase(it);
  return Status::OK;
}

void SimBackend::UnmapSegments(const std::vector<v1::DmaSegment>& segs, v1::DmaDirection dir) {
  for (const v1::DmaSegment& s : segs) board_.dma().UnmapPage(s.dma_addr(), s.length(), dir);
}

Status SimBackend::DmaMap(const v1::DmaMapRequest& req, v1::DmaMapping* resp) {
  std::lock_guard lock(board_.mutex());
  Buffer& b = buffers_.at(req.buffer());  // existence and range checked by the service
  if (b.kind == Kind::kGranted)
    return Status(StatusCode::FAILED_PRECONDITION, "granted buffers are mapped for DMA by dom0");
  // dma_set_mask() is device state the engine drives its address bits by
  // (sim/device_view.h): a refused request puts the mask back as it found it.
  const uint32_t mask_before = board_.dma().mask_bits();
  try {
    board_.dma().SetMask(req.dma_mask_bits() != 0 ? req.dma_mask_bits()
                                                  : board_.board().dma().mask_bits());
  } catch (const sim::SimError& e) {
    return ToStatus(e);
  }
  Mapping m{req.buffer(), req.direction(), {}};
  Status refused = Status::OK;
  uint64_t off = req.offset();
  const uint64_t end = req.offset() + req.length();
  try {
    while (off < end) {
      const uint64_t page = off >> kXenPageShift;
      uint64_t len = std::min(end - off, kXenPageSize - (off & (kXenPageSize - 1)));
      const uint64_t pfn = b.frames[page];
      if (req.sg()) {  // sg_alloc_table_from_pages: merge pfn-contiguous pages into one entry
        for (uint64_t next = page + 1;
             off + len < end && next < b.frames.size() && b.frames[next] == pfn + (next - page) &&
             len + kXenPageSize <= sim::kMaxMapping;
             ++next)
          len += std::min(end - (off + len), kXenPageSize);
      }
      const uint64_t phys = (pfn << kXenPageShift) | (off & (kXenPageSize - 1));
      const sim::PageMapping pm = board_.dma().MapPage(phys, len, req.direction());
      if (pm.dma_addr == sim::kDmaMappingError) {
        refused = Status(StatusCode::RESOURCE_EXHAUSTED,
                         fmt::format("dma_map_page failed for pfn {:#x} (swiotlb full or the "
                                     "bounce buffer is not DMA-capable)",
                                     pfn));
        break;
      }
      v1::DmaSegment s;
      s.set_offset(off);
      s.set_length(static_cast<uint32_t>(len));
      s.set_dma_addr(pm.dma_addr);
      s.set_pfn(pfn);
      s.set_bfn(board_.dma().PfnToBfn(pfn));
      s.set_foreign(s.bfn() != pfn);
      s.set_bounced(pm.bounced);
      s.set_write_refused(!board_.dma().DeviceMayWrite(phys, pm.dma_addr, len));
      m.segments.push_back(s);
      off += len;
    }
  } catch (const sim::SimError& e) {
    refused = ToStatus(e);
  }
  if (!refused.ok()) {  // roll back
    UnmapSegments(m.segments, req.direction());
    board_.dma().SetMask(mask_before);
    return WithNote(refused, fmt::format("nothing stays mapped (the {} segment(s) mapped before "
                                         "it were unmapped and the {}-bit DMA mask restored)",
                                         m.segments.size(), mask_before));
  }
  const uint32_t handle = next_mapping_++;
  resp->set_mapping(handle);
  for (const v1::DmaSegment& s : m.segments) *resp->add_segments() = s;
  ++b.dma_mappings;
  mappings_.emplace(handle, std::move(m));
  return Status::OK;
}

Status SimBackend::DmaSync(uint32_t mapping, v1::SyncFor for_, v1::DmaSyncResponse*) {
  std::lock_guard lock(board_.mutex());
  auto it = mappings_.find(mapping);
  if (it == mappings_.end())
    return Status(StatusCode::NOT_FOUND, fmt::format("unknown DMA mapping {}", mapping));
  try {
    for (const v1::DmaSegment& s : it->second.segments) {
      if (for_ == v1::SYNC_FOR_CPU) {
        board_.dma().SyncForCpu(s.dma_addr(), s.length(), it->second.dir);
      } else {
        board_.dma().SyncForDevice(s.dma_addr(), s.length(), it->second.dir);
      }
    }
  } catch (const sim::SimError& e) {
    return WithNote(ToStatus(e), fmt::format("sync of DMA mapping {}", mapping));
  }
  return Status::OK;
}

Status SimBackend::DmaUnmap(uint32_t mapping, v1::DmaUnmapResponse*) {
  std::lock_guard lock(board_.mutex());
  auto it = mappings_.find(mapping);
  if (it == mappings_.end())
    return Status(StatusCode::NOT_FOUND, fmt::format("unknown DMA mapping {}", mapping));
  // Every segment is unmapped even if one fails, and the mapping is gone either way (as
  // dmahil.ko's unmap), so its buffer stays releasable.
  Status first = Status::OK;
  for (const v1::DmaSegment& s : it->second.segments) {
    try {
      board_.dma().UnmapPage(s.dma_addr(), s.length(), it->second.dir);
    } catch (const sim::SimError& e) {
      if (first.ok())
        first = WithNote(ToStatus(e),
                         fmt::format("unmap of DMA mapping {} (the mapping is gone)", mapping));
    }
  }
  --buffers_.at(it->second.buffer).dma_mappings;
  mappings_.erase(it);
  return first;
}

bool SimBackend::EngineMayAccess(uint64_t bus_addr, uint64_t len, bool write) {
  std::lock_guard lock(board_.mutex());
  for (const auto& [handle, m] : mappings_)
    for (const v1::DmaSegment& s : m.segments)
      if (bus_addr >= s.dma_addr() && bus_addr - s.dma_addr() <= s.length() &&
          len <= s.length() - (bus_addr - s.dma_addr()) && (!write || !s.write_refused()))
        return true;
  return false;
}

template <typename Op>
Status SimBackend::ForEachPage(uint32_t buffer, uint64_t offset, uint64_t len, Op op) {
  std::lock_guard lock(board_.mutex());
  const Buffer& b = buffers_.at(buffer);  // range checked by the service
  try {
    sim::ForEachChunk(offset, len, kXenPageSize, [&](uint64_t off, uint64_t done, uint64_t n) {
      op((b.frames[off >> kXenPageShift] << kXenPageShift) | (off & (kXenPageSize - 1)), done, n);
    });
  } catch (const sim::SimError& e) {
    return ToStatus(e);
  }
  return Status::OK;
}

Status SimBackend::CpuWrite(uint32_t buffer, uint64_t offset, const uint8_t* src, uint64_t len) {
  return ForEachPage(buffer, offset, len, [&](uint64_t gpa, uint64_t at, uint64_t n) {
    board_.CpuWrite(domid_, gpa, src + at, n);
  });
}

Status SimBackend::CpuRead(uint32_t buffer, uint64_t offset, uint8_t* dst, uint64_t len) {
  return ForEachPage(buffer, offset, len, [&](uint64_t gpa, uint64_t at, uint64_t n) {
    board_.CpuRead(domid_, gpa, dst + at, n);
  });
}

Status SimBackend::CpuCleanInvalidate(uint32_t buffer, uint64_t offset, uint64_t len) {
  return ForEachPage(buffer, offset, len, [&](uint64_t gpa, uint64_t, uint64_t n) {
    board_.CpuCleanInvalidate(domid_, gpa, n);
  });
}

Status SimBackend::BlockIo(const v1::BlockIoRequest&, v1::BlockIoResponse*) {
  return Status(grpc::StatusCode::FAILED_PRECONDITION,
                "BlockIo: a virtual board has no block device (PV block I/O runs on qemu-xen "
                "and hardware boards)");
}

}  // namespace dmahil::agent
