// The agent's gRPC service (proto/dmahil/v1/agent.proto): validates every request —
// role, sizes, ranges, enum values, pattern geometry — and refuses bad ones with
// INVALID_ARGUMENT / NOT_FOUND / FAILED_PRECONDITION / OUT_OF_RANGE and a message naming
// the field and the value, before the backend sees them. Fill/Prime/Verify are built
// here on the backend's CPU access, with the pattern engine of common/pattern.h. A backend
// refusal leaves nothing of the request behind (each backend's rollback). Every server
// serving it is built with AddAgentServerOptions (agent/grpc_server.h), so no refusal, not
// even of a request gRPC cannot decode, reaches a client without a message.
#pragma once

#include <mutex>

#include "agent/backend.h"
#include "dmahil/v1/agent.grpc.pb.h"

namespace dmahil::agent {

inline constexpr uint32_t kMaxPages = 1024;             // per request, 4 KiB pages
inline constexpr uint32_t kDefaultMaxFindings = 256;    // Verify findings returned
inline constexpr uint64_t kMaxReadBytes = 64 * 1024;    // ReadBytes length, bytes
inline constexpr uint64_t kMaxBlockIoBytes = 64 << 20;  // BlockIo length, bytes
inline constexpr uint32_t kMaxBlockSegments = 64;       // BlockIo iovecs

class AgentService final : public v1::Agent::Service {
 public:
  /// backend: must outlive the service. Calls are serialised.
  explicit AgentService(Backend& backend);

  grpc::Status GetInfo(grpc::ServerContext*, const v1::GetInfoRequest*, v1::AgentInfo*) override;
  grpc::Status AllocGrants(grpc::ServerContext*, const v1::AllocGrantsRequest*,
                           v1::AllocGrantsResponse*) override;
  grpc::Status MapForeign(grpc::ServerContext*, const v1::MapForeignRequest*,
                          v1::BufferInfo*) override;
  grpc::Status AllocLocal(grpc::ServerContext*, const v1::AllocLocalRequest*,
                          v1::BufferInfo*) override;
  grpc::Status ComposeBuffer(grpc::ServerContext*, const v1::ComposeBufferRequest*,
                             v1::BufferInfo*) override;
  grpc::Status ReleaseBuffer(grpc::ServerContext*, const v1::ReleaseBufferRequest*,
                             v1::ReleaseBufferResponse*) override;
  grpc::Status DmaMap(grpc::ServerContext*, const v1::DmaMapRequest*, v1::DmaMapping*) override;
  grpc::Status DmaSync(grpc::ServerContext*, const v1::DmaSyncRequest*,
                       v1::DmaSyncResponse*) override;
  grpc::Status DmaUnmap(grpc::ServerContext*, const v1::DmaUnmapRequest*,
                        v1::DmaUnmapResponse*) override;
  grpc::Status Fill(grpc::ServerContext*, const v1::FillRequest*, v1::FillResponse*) override;
  grpc::Status Prime(grpc::ServerContext*, const v1::PrimeRequest*, v1::PrimeResponse*) override;
  grpc::Status Verify(grpc::ServerContext*, const v1::VerifyRequest*, v1::CheckSummary*) override;
  grpc::Status ReadBytes(grpc::ServerContext*, const v1::ReadBytesRequest*,
                         v1::ReadBytesResponse*) override;
  /// Checks op, the buffer range, sector alignment, the disk range and segments against
  /// AgentInfo (INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE), then Backend::BlockIo.
  grpc::Status BlockIo(grpc::ServerContext*, const v1::BlockIoRequest*,
                       v1::BlockIoResponse*) override;
  /// dom0 only (FAILED_PRECONDITION elsewhere), then Backend::WatchDevice.
  grpc::Status WatchDevice(grpc::ServerContext*, const v1::WatchDeviceRequest*,
                           v1::WatchDeviceResponse*) override;
  /// dom0 only, then Backend::ReadDeviceOps.
  grpc::Status ReadDeviceOps(grpc::ServerContext*, const v1::ReadDeviceOpsRequest*,
                             v1::DeviceOps*) override;

 private:
  grpc::Status RequireRole(v1::Role role, const char* rpc) const;
  grpc::Status CheckRange(uint32_t buffer, uint64_t offset, uint64_t length, bool line_aligned);
  grpc::Status CheckPattern(const v1::PatternSpec& p, uint64_t offset) const;

  Backend& backend_;
  v1::AgentInfo info_;
  std::mutex mutex_;
};

}  // namespace dmahil::agent
