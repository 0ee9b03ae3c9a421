// A whole virtual board served on loopback: the dom0 and guest agents (gRPC, sim
// backend) and the virtual DMA engine (device protocol over TCP), on ephemeral ports.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server.h>

#include "agent/agent_service.h"
#include "agent/memory_port.h"
#include "agent/sim_backend.h"
#include "firmware/host/device_server.h"
#include "sim/virtual_board.h"

namespace dmahil::agent {

/// Loopback endpoints of a running virtual board.
struct VboardEndpoints {
  std::string dom0;          // "127.0.0.1:port" of the dom0 agent
  std::string guest;         // of the guest (domU) agent
  uint16_t device_port = 0;  // the DMA engine, device protocol over TCP on 127.0.0.1
};

class VirtualBoardServer {
 public:
  /// board: validated virtual board; faults: catalogue ids (SimError if unknown); seed:
  /// the model's PRNG seed. Binds 127.0.0.1 ephemeral ports and starts serving.
  /// Throws std::runtime_error if a port cannot be bound.
  VirtualBoardServer(const v1::Board& board, const std::vector<std::string>& faults, uint64_t seed);
  ~VirtualBoardServer();

  const VboardEndpoints& endpoints() const { return endpoints_; }
  sim::VirtualBoard& board() { return board_; }
  void Shutdown();

 private:
  sim::VirtualBoard board_;
  SimBackend dom0_backend_;
  SimBackend guest_backend_;
  AgentService dom0_service_;
  AgentService guest_service_;
  SimMemoryPort port_;
  std::unique_ptr<grpc::Server> dom0_server_;
  std::unique_ptr<grpc::Server> guest_server_;
  std::unique_ptr<device_host::DeviceServer> device_server_;
  VboardEndpoints endpoints_;
};

}  // namespace dmahil::agent
