// The agent's backend interface: what differs between the virtual board (`sim`) and a
// real board (`linux-xen`: /dev/xen/gntalloc, /dev/xen/gntdev, dmahil.ko). The gRPC
// service (agent_service.h) validates every request before a backend sees it, and builds
// Fill/Prime/Verify on the CPU access primitives below.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <grpcpp/support/status.h>

#include "dmahil/v1/agent.pb.h"

namespace dmahil::agent {

class Backend {
 public:
  virtual ~Backend() = default;

  /// Role, domid, backend name, board, cache line and page size, revision.
  virtual v1::AgentInfo Info() = 0;
  /// Size in bytes of a buffer (pages * 4 KiB), or nullopt for an unknown handle.
  virtual std::optional<uint64_t> BufferBytes(uint32_t buffer) = 0;

  /// guest role: allocate and grant pages (gntalloc). RESOURCE_EXHAUSTED if out of frames.
  virtual grpc::Status AllocGrants(const v1::AllocGrantsRequest& req,
                                   v1::AllocGrantsResponse* resp) = 0;
  /// dom0 role: map foreign grants (gntdev). NOT_FOUND for an unknown gref; nothing stays
  /// mapped when any gref fails.
  virtual grpc::Status MapForeign(const v1::MapForeignRequest& req, v1::BufferInfo* resp) = 0;
  /// dom0 role: allocate local pages.
  virtual grpc::Status AllocLocal(const v1::AllocLocalRequest& req, v1::BufferInfo* resp) = 0;
  /// dom0 role: a buffer of other buffers' pages (validated to exist by the service).
  virtual grpc::Status ComposeBuffer(const v1::ComposeBufferRequest& req, v1::BufferInfo* resp) = 0;
  /// Pages in a buffer, or nullopt for an unknown handle.
  std::optional<uint64_t> BufferPages(uint32_t buffer) {
    const std::optional<uint64_t> bytes = BufferBytes(buffer);
    return bytes ? std::optional<uint64_t>(*bytes / 4096) : std::nullopt;
  }
  /// Unmaps / ungrants / frees a buffer. FAILED_PRECONDITION while DMA-mapped or while a
  /// composed buffer uses its pages.
  virtual grpc::Status ReleaseBuffer(uint32_t buffer) = 0;

  /// dom0 role: dma_map_page per 4 KiB page of [offset, offset + length) (validated to lie
  /// inside the buffer). RESOURCE_EXHAUSTED if the DMA API fails (swiotlb full, not
  /// DMA-capable); nothing stays mapped then. Each segment's write_refused is the
  /// backend's own judgement of its bus address (docs/architecture.md §12): the engine
  /// must not write a segment whose address is not the page's own or beyond its reach.
  virtual grpc::Status DmaMap(const v1::DmaMapRequest& req, v1::DmaMapping* resp) = 0;
  /// dma_sync_*_for_cpu / _for_device over a mapping; NOT_FOUND for an unknown mapping.
  /// `resp->maintenance` gets the cache maintenance the kernel issued, if the backend
  /// records it (Maintenance.audited).
  virtual grpc::Status DmaSync(uint32_t mapping, v1::SyncFor for_, v1::DmaSyncResponse* resp) = 0;
  /// dma_unmap_page / dma_unmap_sg; NOT_FOUND for an unknown mapping. Maintenance as DmaSync.
  virtual grpc::Status DmaUnmap(uint32_t mapping, v1::DmaUnmapResponse* resp) = 0;

  /// CPU access to [offset, offset + len) of a buffer (validated by the service).
  virtual grpc::Status CpuWrite(uint32_t buffer, uint64_t offset, const uint8_t* src,
                                uint64_t len) = 0;
  virtual grpc::Status CpuRead(uint32_t buffer, uint64_t offset, uint8_t* dst, uint64_t len) = 0;
  /// DC CIVAC over the range (arm64 lets EL0 do it: SCTLR_EL1.UCI).
  virtual grpc::Status CpuCleanInvalidate(uint32_t buffer, uint64_t offset, uint64_t len) = 0;

  /// O_DIRECT pwritev/preadv between [offset, offset + length) of a local buffer and the
  /// agent's block device (docs/architecture.md §14; the service checked the buffer range
  /// and the sector alignment against Info()). FAILED_PRECONDITION without a block device
  /// or for a buffer that is not local; the errno of a failed or short transfer otherwise.
  virtual grpc::Status BlockIo(const v1::BlockIoRequest& req, v1::BlockIoResponse* resp) = 0;

  /// The DMA-API audit of a real device (agent/kmod/dev_audit.c): start watching `device`
  /// (a DT path, or a PCI or platform dev_name), or stop if it is empty. The default, for
  /// backends with no real devices: UNIMPLEMENTED.
  virtual grpc::Status WatchDevice(const std::string& device, v1::WatchDeviceResponse*) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "WatchDevice: this backend has no real device to watch (" + device + ")");
  }
  /// The watched device's ops since the last read. Default: UNIMPLEMENTED.
  virtual grpc::Status ReadDeviceOps(v1::DeviceOps*) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "ReadDeviceOps: this backend has no real device to watch");
  }
};

}  // namespace dmahil::agent
