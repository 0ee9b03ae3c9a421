#include "agent/agent_service.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "common/pattern.h"
#include "common/pattern_fast.h"
#include "firmware/host/codec.h"

namespace dmahil::agent {
namespace {

using grpc::Status;
using grpc::StatusCode;

Status Invalid(const std::string& msg) { return Status(StatusCode::INVALID_ARGUMENT, msg); }

/// INVALID_ARGUMENT unless 1 <= count <= kMaxPages; `what` names the field.
Status CheckCount(uint64_t count, const char* what) {
  if (count >= 1 && count <= kMaxPages) return Status::OK;
  return Invalid(fmt::format("{} {} must be 1..{}", what, count, kMaxPages));
}

}  // namespace

AgentService::AgentService(Backend& backend) : backend_(backend), info_(backend.Info()) {}

Status AgentService::RequireRole(v1::Role role, const char* rpc) const {
  if (info_.role() == role) return Status::OK;
  return Status(StatusCode::FAILED_PRECONDITION,
                fmt::format("{} is a {} operation; this agent is {}", rpc, v1::Role_Name(role),
                            v1::Role_Name(info_.role())));
}

Status AgentService::CheckRange(uint32_t buffer, uint64_t offset, uint64_t length,
                                bool line_aligned) {
  const std::optional<uint64_t> bytes = backend_.BufferBytes(buffer);
  if (!bytes) return Status(StatusCode::NOT_FOUND, fmt::format("unknown buffer {}", buffer));
  if (length == 0) return Invalid("length is 0");
  if (offset > *bytes || length > *bytes - offset)
    return Status(StatusCode::OUT_OF_RANGE,
                  fmt::format("range offset {:#x} length {:#x} exceeds buffer {} of {:#x} bytes",
                              offset, length, buffer, *bytes));
  const uint64_t line = info_.line_size();
  if (line_aligned && (offset % line != 0 || length % line != 0))
    return Invalid(
        fmt::format("offset {:#x} and length {:#x} must be multiples of the {}-byte line", offset,
                    length, line));
  return Status::OK;
}

Status AgentService::CheckPattern(const v1::PatternSpec& p, uint64_t offset) const {
  if (p.line_size() != info_.line_size())
    return Invalid(fmt::format("pattern.line_size {} differs from the board's {}-byte line",
                               p.line_size(), info_.line_size()));
  if (p.first_line() != offset / info_.line_size())
    return Invalid(fmt::format("pattern.first_line {} must be offset / line_size = {}",
                               p.first_line(), offset / info_.line_size()));
  if (p.buffer_id() > 0xFFFF || p.generation() > 0xFFFF)
    return Invalid("pattern.buffer_id and pattern.generation are 16-bit");
  return Status::OK;
}

Status AgentService::GetInfo(grpc::ServerContext*, const v1::GetInfoRequest*, v1::AgentInfo* resp) {
  *resp = info_;
  return Status::OK;
}

Status AgentService::AllocGrants(grpc::ServerContext*, const v1::AllocGrantsRequest* req,
                                 v1::AllocGrantsResponse* resp) {
  if (Status s = RequireRole(v1::ROLE_GUEST, "AllocGrants"); !s.ok()) return s;
  if (Status s = CheckCount(req->pages(), "pages"); !s.ok()) return s;
  if (!v1::Placement_IsValid(req->placement())) return Invalid("unknown placement");
  if (req->dma_mask_bits() != 0 && (req->dma_mask_bits() < 32 || req->dma_mask_bits() > 64))
    return Invalid(
        fmt::format("dma_mask_bits {} must be 0 (the board's) or 32..64", req->dma_mask_bits()));
  if (req->grants_per_page() > 2)
    return Invalid(fmt::format("grants_per_page {} must be 0, 1 or 2", req->grants_per_page()));
  std::lock_guard lock(mutex_);
  return backend_.AllocGrants(*req, resp);
}

Status AgentService::MapForeign(grpc::ServerContext*, const v1::MapForeignRequest* req,
                                v1::BufferInfo* resp) {
  if (Status s = RequireRole(v1::ROLE_DOM0, "MapForeign"); !s.ok()) return s;
  if (Status s = CheckCount(static_cast<uint64_t>(req->grefs_size()), "grefs count"); !s.ok())
    return s;
  if (req->domid() == info_.domid()) return Invalid("cannot map this domain's own grants");
  std::lock_guard lock(mutex_);
  return backend_.MapForeign(*req, resp);
}

Status AgentService::AllocLocal(grpc::ServerContext*, const v1::AllocLocalRequest* req,
                                v1::BufferInfo* resp) {
  if (info_.role() != v1::ROLE_DOM0 && info_.block_device().empty())
    return Status(StatusCode::FAILED_PRECONDITION,
                  "AllocLocal in a guest is for BlockIo, and this agent has no block device");
  if (Status s = CheckCount(req->pages(), "pages"); !s.ok()) return s;
  if (!v1::Placement_IsValid(req->placement())) return Invalid("unknown placement");
  if (req->dma_mask_bits() != 0 && (req->dma_mask_bits() < 32 || req->dma_mask_bits() > 64))
    return Invalid(
        fmt::format("dma_mask_bits {} must be 0 (the board's) or 32..64", req->dma_mask_bits()));
  std::lock_guard lock(mutex_);
  return backend_.AllocLocal(*req, resp);
}

Status AgentService::ComposeBuffer(grpc::ServerContext*, const v1::ComposeBufferRequest* req,
                                   v1::BufferInfo* resp) {
  if (Status s = RequireRole(v1::ROLE_DOM0, "ComposeBuffer"); !s.ok()) return s;
  if (Status s = CheckCount(static_cast<uint64_t>(req->pages_size()), "pages count"); !s.ok())
    return s;
  std::lock_guard lock(mutex_);
  for (int i = 0; i < req->pages_size(); ++i) {
    const v1::PageRef& p = req->pages(i);
    const std::optional<uint64_t> pages = backend_.BufferPages(p.buffer());
    if (!pages)
      return Status(StatusCode::NOT_FOUND,
                    fmt::format("pages[{}]: unknown buffer {}", i, p.buffer()));
    if (p.page() >= *pages)
      return Status(StatusCode::OUT_OF_RANGE,
                    fmt::format("pages[{}]: page {} of buffer {} which has {} pages", i, p.page(),
                                p.buffer(), *pages));
  }
  return backend_.ComposeBuffer(*req, resp);
}

Status AgentService::ReleaseBuffer(grpc::ServerContext*, const v1::ReleaseBufferRequest* req,
                                   v1::ReleaseBufferResponse*) {
  std::lock_guard lock(mutex_);
  if (!backend_.BufferBytes(req->buffer()))
    return Status(StatusCode::NOT_FOUND, fmt::format("unknown buffer {}", req->buffer()));
  return backend_.ReleaseBuffer(req->buffer());
}

Status AgentService::DmaMap(grpc::ServerContext*, const v1::DmaMapRequest* req,
                            v1::DmaMapping* resp) {
  if (Status s = RequireRole(v1::ROLE_DOM0, "DmaMap"); !s.ok()) return s;
  if (req->direction() != v1::DMA_TO_DEVICE && req->direction() != v1::DMA_FROM_DEVICE &&
      req->direction() != v1::DMA_BIDIRECTIONAL)
    return Invalid("direction must be DMA_TO_DEVICE, DMA_FROM_DEVICE or DMA_BIDIRECTIONAL");
  if (req->dma_mask_bits() != 0 && (req->dma_mask_bits() < 32 || req->dma_mask_bits() > 64))
    return Invalid(fmt::format("dma_mask_bits {} must be 0 or 32..64", req->dma_mask_bits()));
  std::lock_guard lock(mutex_);
  if (Status s = CheckRange(req->buffer(), req->offset(), req->length(), false); !s.ok()) return s;
  return backend_.DmaMap(*req, resp);
}

Status AgentService::DmaSync(grpc::ServerContext*, const v1::DmaSyncRequest* req,
                             v1::DmaSyncResponse* resp) {
  if (Status s = RequireRole(v1::ROLE_DOM0, "DmaSync"); !s.ok()) return s;
  if (req->for_() != v1::SYNC_FOR_CPU && req->for_() != v1::SYNC_FOR_DEVICE)
    return Invalid("for_ must be SYNC_FOR_CPU or SYNC_FOR_DEVICE");
  std::lock_guard lock(mutex_);
  return backend_.DmaSync(req->mapping(), req->for_(), resp);
}

Status AgentService::DmaUnmap(grpc::ServerContext*, const v1::DmaUnmapRequest* req,
                              v1::DmaUnmapResponse* resp) {
  if (Status s = RequireRole(v1::ROLE_DOM0, "DmaUnmap"); !s.ok()) return s;
  std::lock_guard lock(mutex_);
  return backend_.DmaUnmap(req->mapping(), resp);
}

Status AgentService::Fill(grpc::ServerContext*, const v1::FillRequest* req, v1::FillResponse*) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckRange(req->buffer(), req->offset(), req->length(), true); !s.ok()) return s;
  if (Status s = CheckPattern(req->pattern(), req->offset()); !s.ok()) return s;
  std::vector<uint8_t> data(req->length());
  pattern::FastFill(device_host::SpecFromProto(req->pattern()), data.data(), data.size());
  return backend_.CpuWrite(req->buffer(), req->offset(), data.data(), data.size());
}

Status AgentService::Prime(grpc::ServerContext*, const v1::PrimeRequest* req, v1::PrimeResponse*) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckRange(req->buffer(), req->offset(), req->length(), false); !s.ok()) return s;
  if (req->op() == v1::PRIME_READ) {
    std::vector<uint8_t> data(req->length());
    return backend_.CpuRead(req->buffer(), req->offset(), data.data(), data.size());
  }
  if (req->op() == v1::PRIME_CLEAN_INVALIDATE)
    return backend_.CpuCleanInvalidate(req->buffer(), req->offset(), req->length());
  return Invalid("op must be PRIME_READ or PRIME_CLEAN_INVALIDATE");
}

Status AgentService::Verify(grpc::ServerContext*, const v1::VerifyRequest* req,
                            v1::CheckSummary* resp) {
  std::lock_guard lock(mutex_);
  if (Status s = CheckRange(req->buffer(), req->offset(), req->length(), true); !s.ok()) return s;
  if (Status s = CheckPattern(req->pattern(), req->offset()); !s.ok()) return s;
  std::vector<uint8_t> data(req->length());
  if (Status s = backend_.CpuRead(req->buffer(), req->offset(), data.data(), data.size()); !s.ok())
    return s;
  const uint32_t cap = req->max_findings() != 0 ? req->max_findings() : kDefaultMaxFindings;
  uint64_t total = 0;
  const size_t ok = pattern::FastCheck(device_host::SpecFromProto(req->pattern()), data.data(),
                                       data.size(), [&](const pattern::Finding& f) {
                                         if (total++ < cap)
                                           *resp->add_mismatches() = device_host::FindingToProto(f);
                                       });
  resp->set_lines_checked(data.size() / req->pattern().line_size());
  resp->set_lines_ok(ok);
  resp->set_mismatches_total(total);
  return Status::OK;
}

Status AgentService::ReadBytes(grpc::ServerContext*, const v1::ReadBytesRequest* req,
                               v1::ReadBytesResponse* resp) {
  std::lock_guard lock(mutex_);
  if (req->length() > kMaxReadBytes)
    return Invalid(fmt::format("length {:#x} exceeds {:#x}", req->length(), kMaxReadBytes));
  if (Status s = CheckRange(req->buffer(), req->offset(), req->length(), false); !s.ok()) return s;
  std::string data(req->length(), '\0');
  if (Status s = backend_.CpuRead(req->buffer(), req->offset(),
                                  reinterpret_cast<uint8_t*>(data.data()), data.size());
      !s.ok())
    return s;
  resp->set_data(std::move(data));
  return Status::OK;
}

Status AgentService::BlockIo(grpc::ServerContext*, const v1::BlockIoRequest* req,
                             v1::BlockIoResponse* resp) {
  std::lock_guard lock(mutex_);
  if (info_.block_device().empty())
    return Status(StatusCode::FAILED_PRECONDITION,
                  "BlockIo: this agent has no block device (dmahil-agent --block-device)");
  if (req->op() != v1::BLOCK_WRITE && req->op() != v1::BLOCK_READ)
    return Invalid("op must be BLOCK_WRITE or BLOCK_READ");
  if (req->length() > kMaxBlockIoBytes)
    return Invalid(fmt::format("length {:#x} exceeds {:#x}", req->length(), kMaxBlockIoBytes));
  if (Status s = CheckRange(req->buffer(), req->offset(), req->length(), false); !s.ok()) return s;
  const uint64_t sector = info_.block_sector_size();
  if (req->offset() % sector != 0 || req->length() % sector != 0 ||
      req->disk_offset() % sector != 0)
    return Invalid(fmt::format(
        "offset {:#x}, length {:#x} and disk_offset {:#x} must be multiples of {}'s {}-byte "
        "sector (O_DIRECT)",
        req->offset(), req->length(), req->disk_offset(), info_.block_device(), sector));
  const uint64_t disk = info_.block_bytes();
  if (req->disk_offset() > disk || req->length() > disk - req->disk_offset())
    return Status(StatusCode::OUT_OF_RANGE,
                  fmt::format("disk range {:#x}+{:#x} exceeds {} of {:#x} bytes",
                              req->disk_offset(), req->length(), info_.block_device(), disk));
  const uint32_t segments = std::max(1u, req->segments());
  if (segments > kMaxBlockSegments || req->length() / sector < segments)
    return Invalid(fmt::format("segments {} must be 0..{} and at most the {} sectors of length",
                               req->segments(), kMaxBlockSegments, req->length() / sector));
  return backend_.BlockIo(*req, resp);
}

Status AgentService::WatchDevice(grpc::ServerContext*, const v1::WatchDeviceRequest* req,
                                 v1::WatchDeviceResponse* resp) {
  std::lock_guard lock(mutex_);
  if (info_.role() != v1::ROLE_DOM0)
    return Status(StatusCode::FAILED_PRECONDITION, "WatchDevice: only dom0 maps for devices");
  return backend_.WatchDevice(req->device(), resp);
}

Status AgentService::ReadDeviceOps(grpc::ServerContext*, const v1::ReadDeviceOpsRequest*,
                                   v1::DeviceOps* resp) {
  std::lock_guard lock(mutex_);
  if (info_.role() != v1::ROLE_DOM0)
    return Status(StatusCode::FAILED_PRECONDITION, "ReadDeviceOps: only dom0 maps for devices");
  return backend_.ReadDeviceOps(resp);
}

}  // namespace dmahil::agent
