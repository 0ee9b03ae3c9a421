#include "agent/vboard.h"

#include <stdexcept>

#include <fmt/format.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

namespace dmahil::agent {
namespace {

std::unique_ptr<grpc::Server> Serve(AgentService& service, std::string* endpoint) {
  int port = 0;
  grpc::ServerBuilder builder;
  // Loopback only; mTLS between controller and agents comes with real boards (DESIGN §10).
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) throw std::runtime_error("cannot bind a loopback gRPC port");
  *endpoint = fmt::format("127.0.0.1:{}", port);
  return server;
}

}  // namespace

VirtualBoardServer::VirtualBoardServer(const v1::Board& board,
                                       const std::vector<std::string>& faults, uint64_t seed)
    : board_(board, sim::FaultSet::Parse(faults), seed),
      dom0_backend_(board_, v1::ROLE_DOM0),
      guest_backend_(board_, v1::ROLE_GUEST),
      dom0_service_(dom0_backend_),
      guest_service_(guest_backend_),
      port_(board_) {
  dom0_server_ = Serve(dom0_service_, &endpoints_.dom0);
  guest_server_ = Serve(guest_service_, &endpoints_.guest);
  device_server_ = std::make_unique<device_host::DeviceServer>(port_);
  endpoints_.device_port = device_server_->port();
  device_server_->Start();
}

VirtualBoardServer::~VirtualBoardServer() { Shutdown(); }

void VirtualBoardServer::Shutdown() {
  if (device_server_) device_server_->Stop();
  if (dom0_server_) dom0_server_->Shutdown();
  if (guest_server_) guest_server_->Shutdown();
}

}  // namespace dmahil::agent
