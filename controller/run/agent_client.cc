#include "controller/run/agent_client.h"

#include <chrono>
#include <thread>

#include <absl/status/status.h>
#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

namespace dmahil::controller {

AgentClient::AgentClient(std::string endpoint, uint32_t deadline_ms)
    : endpoint_(std::move(endpoint)),
      deadline_ms_(deadline_ms),
      stub_(
          v1::Agent::NewStub(grpc::CreateChannel(endpoint_, grpc::InsecureChannelCredentials()))) {}

template <typename Req, typename Resp, typename Call>
Resp AgentClient::Invoke(const char* rpc, const Req& req, Call call) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms_));
  Resp resp;
  const grpc::Status s = (stub_.get()->*call)(&ctx, req, &resp);
  if (!s.ok())
    throw AgentError(
        fmt::format("{} {}: {}: {}", endpoint_, rpc,
                    absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
                    s.error_message()),
        s.error_code());
  return resp;
}

v1::AgentInfo AgentClient::GetInfo() {
  return Invoke<v1::GetInfoRequest, v1::AgentInfo>("GetInfo", {}, &v1::Agent::Stub::GetInfo);
}

v1::AgentInfo AgentClient::WaitReady(uint32_t timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    try {
      return GetInfo();
    } catch (const AgentError& e) {
      if (std::chrono::steady_clock::now() >= end)
        throw AgentError(
            fmt::format("agent did not answer within {} ms: {}", timeout_ms, e.what()));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

v1::AllocGrantsResponse AgentClient::AllocGrants(uint32_t pages, uint32_t to_domid,
                                                 v1::Placement placement, uint32_t grants_per_page,
                                                 uint32_t dma_mask_bits) {
  v1::AllocGrantsRequest req;
  req.set_dma_mask_bits(dma_mask_bits);
  req.set_grants_per_page(grants_per_page);
  req.set_pages(pages);
  req.set_to_domid(to_domid);
  req.set_placement(placement);
  return Invoke<v1::AllocGrantsRequest, v1::AllocGrantsResponse>("AllocGrants", req,
                                                                 &v1::Agent::Stub::AllocGrants);
}

v1::BufferInfo AgentClient::MapForeign(uint32_t domid,
                                       const google::protobuf::RepeatedField<uint32_t>& grefs) {
  v1::MapForeignRequest req;
  req.set_domid(domid);
  *req.mutable_grefs() = grefs;
  return Invoke<v1::MapForeignRequest, v1::BufferInfo>("MapForeign", req,
                                                       &v1::Agent::Stub::MapForeign);
}

v1::BufferInfo AgentClient::AllocLocal(uint32_t pages, v1::Placement placement,
                                       uint32_t dma_mask_bits) {
  v1::AllocLocalRequest req;
  req.set_dma_mask_bits(dma_mask_bits);
  req.set_pages(pages);
  req.set_placement(placement);
  return Invoke<v1::AllocLocalRequest, v1::BufferInfo>("AllocLocal", req,
                                                       &v1::Agent::Stub::AllocLocal);
}

v1::BufferInfo AgentClient::ComposeBuffer(const std::vector<std::pair<uint32_t, uint32_t>>& pages) {
  v1::ComposeBufferRequest req;
  for (const auto& [buffer, page] : pages) {
    v1::PageRef* ref = req.add_pages();
    ref->set_buffer(buffer);
    ref->set_page(page);
  }
  return Invoke<v1::ComposeBufferRequest, v1::BufferInfo>("ComposeBuffer", req,
                                                          &v1::Agent::Stub::ComposeBuffer);
}

void AgentClient::ReleaseBuffer(uint32_t buffer) {
  v1::ReleaseBufferRequest req;
  req.set_buffer(buffer);
  Invoke<v1::ReleaseBufferRequest, v1::ReleaseBufferResponse>("ReleaseBuffer", req,
                                                              &v1::Agent::Stub::ReleaseBuffer);
}

v1::DmaMapping AgentClient::DmaMap(uint32_t buffer, uint64_t offset, uint64_t length,
                                   v1::DmaDirection dir, uint32_t dma_mask_bits, bool sg) {
  v1::DmaMapRequest req;
  req.set_sg(sg);
  req.set_buffer(buffer);
  req.set_offset(offset);
  req.set_length(length);
  req.set_direction(dir);
  req.set_dma_mask_bits(dma_mask_bits);
  return Invoke<v1::DmaMapRequest, v1::DmaMapping>("DmaMap", req, &v1::Agent::Stub::DmaMap);
}

v1::Maintenance AgentClient::DmaSync(uint32_t mapping, v1::SyncFor for_) {
  v1::DmaSyncRequest req;
  req.set_mapping(mapping);
  req.set_for_(for_);
  return Invoke<v1::DmaSyncRequest, v1::DmaSyncResponse>("DmaSync", req, &v1::Agent::Stub::DmaSync)
      .maintenance();
}

v1::Maintenance AgentClient::DmaUnmap(uint32_t mapping) {
  v1::DmaUnmapRequest req;
  req.set_mapping(mapping);
  return Invoke<v1::DmaUnmapRequest, v1::DmaUnmapResponse>("DmaUnmap", req,
                                                           &v1::Agent::Stub::DmaUnmap)
      .maintenance();
}

void AgentClient::Fill(uint32_t buffer, uint64_t offset, uint64_t length,
                       const v1::PatternSpec& pattern) {
  v1::FillRequest req;
  req.set_buffer(buffer);
  req.set_offset(offset);
  req.set_length(length);
  *req.mutable_pattern() = pattern;
  Invoke<v1::FillRequest, v1::FillResponse>("Fill", req, &v1::Agent::Stub::Fill);
}

void AgentClient::Prime(uint32_t buffer, uint64_t offset, uint64_t length, v1::PrimeOp op) {
  v1::PrimeRequest req;
  req.set_buffer(buffer);
  req.set_offset(offset);
  req.set_length(length);
  req.set_op(op);
  Invoke<v1::PrimeRequest, v1::PrimeResponse>("Prime", req, &v1::Agent::Stub::Prime);
}

std::string AgentClient::ReadBytes(uint32_t buffer, uint64_t offset, uint64_t length) {
  v1::ReadBytesRequest req;
  req.set_buffer(buffer);
  req.set_offset(offset);
  req.set_length(length);
  return Invoke<v1::ReadBytesRequest, v1::ReadBytesResponse>("ReadBytes", req,
                                                             &v1::Agent::Stub::ReadBytes)
      .data();
}

v1::CheckSummary AgentClient::Verify(uint32_t buffer, uint64_t offset, uint64_t length,
                                     const v1::PatternSpec& pattern, uint32_t max_findings) {
  v1::VerifyRequest req;
  req.set_buffer(buffer);
  req.set_offset(offset);
  req.set_length(length);
  *req.mutable_pattern() = pattern;
  req.set_max_findings(max_findings);
  return Invoke<v1::VerifyRequest, v1::CheckSummary>("Verify", req, &v1::Agent::Stub::Verify);
}

v1::BlockIoResponse AgentClient::BlockIo(const v1::BlockIoRequest& request) {
  return Invoke<v1::BlockIoRequest, v1::BlockIoResponse>("BlockIo", request,
                                                         &v1::Agent::Stub::BlockIo);
}

v1::WatchDeviceResponse AgentClient::WatchDevice(const std::string& device) {
  v1::WatchDeviceRequest req;
  req.set_device(device);
  return Invoke<v1::WatchDeviceRequest, v1::WatchDeviceResponse>("WatchDevice", req,
                                                                 &v1::Agent::Stub::WatchDevice);
}

v1::DeviceOps AgentClient::ReadDeviceOps() {
  return Invoke<v1::ReadDeviceOpsRequest, v1::DeviceOps>("ReadDeviceOps", {},
                                                         &v1::Agent::Stub::ReadDeviceOps);
}

}  // namespace dmahil::controller
