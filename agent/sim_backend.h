// The agent's `sim` backend: the dom0 or guest side of a virtual board (sim/). Both roles
// of one board share one VirtualBoard, in one process (dmahil-vboard).
#pragma once

#include <map>
#include <vector>

#include "agent/backend.h"
#include "sim/error.h"
#include "sim/virtual_board.h"

namespace dmahil::agent {

class SimBackend final : public Backend {
 public:
  /// board: shared with the other role's backend; must outlive this. role: ROLE_DOM0
  /// (domid 0) or ROLE_GUEST (domid 1).
  SimBackend(sim::VirtualBoard& board, v1::Role role);

  v1::AgentInfo Info() override;
  std::optional<uint64_t> BufferBytes(uint32_t buffer) override;
  /// Populates req.pages() domU frames (gfns) and grants each grants_per_page times
  /// (grefs: all of page 0..n-1's first grants, then their second ones). RESOURCE_EXHAUSTED
  /// when the domU has too few free frames or the grant table (1024 entries) fills up;
  /// then every gref made is ended and every frame given back before the refusal, whose
  /// message says "nothing was kept".
  grpc::Status AllocGrants(const v1::AllocGrantsRequest& req,
                           v1::AllocGrantsResponse* resp) override;
  /// Maps each gref at a ballooned dom0 pfn. NOT_FOUND for an unknown gref,
  /// RESOURCE_EXHAUSTED without enough ballooned pfns; then the grefs mapped before it are
  /// unmapped and the pfns freed ("nothing stays mapped").
  grpc::Status MapForeign(const v1::MapForeignRequest& req, v1::BufferInfo* resp) override;
  grpc::Status AllocLocal(const v1::AllocLocalRequest& req, v1::BufferInfo* resp) override;
  grpc::Status ComposeBuffer(const v1::ComposeBufferRequest& req, v1::BufferInfo* resp) override;
  grpc::Status ReleaseBuffer(uint32_t buffer) override;
  /// Each segment's write_refused is the model's sim::LinuxDma::DeviceMayWrite, decided
  /// here when it is mapped (as dmahil.ko's seg_write_safe on a real board). Sets the
  /// device's DMA mask (req.dma_mask_bits, 0: the board's), which stays for the mapping's
  /// life. RESOURCE_EXHAUSTED when a page cannot be mapped (swiotlb full, bounce not
  /// DMA-capable); then the segments mapped before it are unmapped and the mask put back
  /// ("nothing stays mapped").
  grpc::Status DmaMap(const v1::DmaMapRequest& req, v1::DmaMapping* resp) override;
  grpc::Status DmaSync(uint32_t mapping, v1::SyncFor for_, v1::DmaSyncResponse* resp) override;
  /// Unmaps every segment; the mapping is gone even if one of them fails (the status names
  /// the first failure).
  grpc::Status DmaUnmap(uint32_t mapping, v1::DmaUnmapResponse* resp) override;
  grpc::Status CpuWrite(uint32_t buffer, uint64_t offset, const uint8_t* src,
                        uint64_t len) override;
  grpc::Status CpuRead(uint32_t buffer, uint64_t offset, uint8_t* dst, uint64_t len) override;
  grpc::Status CpuCleanInvalidate(uint32_t buffer, uint64_t offset, uint64_t len) override;
  /// FAILED_PRECONDITION: a virtual board has no block device.
  grpc::Status BlockIo(const v1::BlockIoRequest& req, v1::BlockIoResponse* resp) override;

  /// The virtual engine's fence, as dmahil.ko's in_window() on a real board: whether the
  /// engine may read (`write` false) or write [bus_addr, bus_addr + len) — inside one
  /// segment of a live mapping of this (dom0) backend, and for a write one whose
  /// write_refused is false. Takes the board lock.
  bool EngineMayAccess(uint64_t bus_addr, uint64_t len, bool write);

 private:
  enum class Kind { kGranted, kForeign, kLocal, kComposite };
  struct Buffer {
    Kind kind;
    std::vector<uint64_t> frames;  // gfns (guest) or pfns (dom0), one per 4 KiB page
    std::vector<uint32_t> grefs;   // kGranted
    uint32_t dma_mappings = 0;
    std::vector<uint32_t> sources;  // kComposite: the buffer each page comes from
    uint32_t users = 0;             // composed-buffer pages that use this buffer's pages
  };
  struct Mapping {
    uint32_t buffer;
    v1::DmaDirection dir;
    std::vector<v1::DmaSegment> segments;
  };
  // Gives a new dom0 buffer its handle and reports its pfns.
  grpc::Status Register(Buffer b, v1::BufferInfo* resp);
  template <typename Op>
  grpc::Status ForEachPage(uint32_t buffer, uint64_t offset, uint64_t len, Op op);
  void UnmapSegments(const std::vector<v1::DmaSegment>& segs, v1::DmaDirection dir);

  sim::VirtualBoard& board_;
  v1::Role role_;
  uint32_t domid_;
  std::map<uint32_t, Buffer> buffers_;
  std::map<uint32_t, Mapping> mappings_;
  uint32_t next_buffer_ = 1;
  uint32_t next_mapping_ = 1;
};

/// Maps a model error to the gRPC status the agent answers with.
grpc::Status ToStatus(const sim::SimError& e);

}  // namespace dmahil::agent
