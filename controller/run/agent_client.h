// The controller's client of one agent (proto/dmahil/v1/agent.proto) over gRPC: every
// call has a deadline, and a failed call throws AgentError naming the agent, the RPC and
// the status the agent gave.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "dmahil/v1/agent.grpc.pb.h"

namespace dmahil::controller {

/// An agent refused a request or could not be reached. what(): "<endpoint> <Rpc>:
/// <STATUS_CODE>: <agent's message>".
class AgentError : public std::runtime_error {
 public:
  explicit AgentError(const std::string& what, grpc::StatusCode code = grpc::StatusCode::UNKNOWN)
      : std::runtime_error(what), code_(code) {}
  /// The agent's status code (UNKNOWN when the agent did not answer at all).
  grpc::StatusCode code() const { return code_; }

 private:
  grpc::StatusCode code_;
};

class AgentClient {
 public:
  /// endpoint: "host:port"; deadline_ms: per call.
  AgentClient(std::string endpoint, uint32_t deadline_ms = 10000);

  const std::string& endpoint() const { return endpoint_; }

  v1::AgentInfo GetInfo();
  /// Waits until the agent answers GetInfo or timeout_ms passes (then AgentError).
  v1::AgentInfo WaitReady(uint32_t timeout_ms);
  /// dma_mask_bits: the mask the placement is judged against (0: the board's).
  v1::AllocGrantsResponse AllocGrants(uint32_t pages, uint32_t to_domid, v1::Placement placement,
                                      uint32_t grants_per_page = 1, uint32_t dma_mask_bits = 0);
  v1::BufferInfo MapForeign(uint32_t domid, const google::protobuf::RepeatedField<uint32_t>& grefs);
  v1::BufferInfo AllocLocal(uint32_t pages, v1::Placement placement, uint32_t dma_mask_bits = 0);
  void ReleaseBuffer(uint32_t buffer);
  v1::DmaMapping DmaMap(uint32_t buffer, uint64_t offset, uint64_t length, v1::DmaDirection dir,
                        uint32_t dma_mask_bits, bool sg = false);
  /// A dom0 buffer of other buffers' pages: pages[i] = (buffer, page index).
  v1::BufferInfo ComposeBuffer(const std::vector<std::pair<uint32_t, uint32_t>>& pages);
  /// Returns the cache maintenance the kernel issued (Maintenance.audited false if unknown).
  v1::Maintenance DmaSync(uint32_t mapping, v1::SyncFor for_);
  v1::Maintenance DmaUnmap(uint32_t mapping);
  void Fill(uint32_t buffer, uint64_t offset, uint64_t length, const v1::PatternSpec& pattern);
  void Prime(uint32_t buffer, uint64_t offset, uint64_t length, v1::PrimeOp op);
  std::string ReadBytes(uint32_t buffer, uint64_t offset, uint64_t length);
  v1::CheckSummary Verify(uint32_t buffer, uint64_t offset, uint64_t length,
                          const v1::PatternSpec& pattern, uint32_t max_findings);
  /// One O_DIRECT pwritev/preadv on the agent's block device (agent.proto BlockIoRequest).
  v1::BlockIoResponse BlockIo(const v1::BlockIoRequest& request);
  /// dom0: start watching `device`'s DMA-API traffic, or stop if empty (agent.proto
  /// WatchDeviceRequest).
  v1::WatchDeviceResponse WatchDevice(const std::string& device);
  /// dom0: the watched device's ops since the last read.
  v1::DeviceOps ReadDeviceOps();

 private:
  template <typename Req, typename Resp, typename Call>
  Resp Invoke(const char* rpc, const Req& req, Call call);

  std::string endpoint_;
  uint32_t deadline_ms_;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

}  // namespace dmahil::controller
