// A whole virtual board served on loopback: the dom0 and guest agents (gRPC, sim
// backend) and the virtual DMA engine (device protocol over TCP), on ephemeral ports.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/server.h>

#include "agent/agent_service.h"
#include "agent/memory_port.h"
#include "agent/sim_backend.h"
#include "common/revision.h"
#include "firmware/host/device_server.h"
#include "sim/virtual_board.h"

namespace dmahil::agent {

/// The fault catalogue (common/fault_catalogue.h) as common/revision.h's loader asks it.
CatalogueFault LookupCatalogueFault(std::string_view id);

/// One fault switch of the board's revision, decided for this boot.
struct BootSwitch {
  std::string tree;      // "linux" or "xen"
  std::string describe;  // the revision file's describe text
  std::string id;        // catalogue id
  double boot_rate = 0;  // as in the file, [0, 1]
  bool taken = false;    // this boot takes the faulty path (the fault is injected)

  /// The console line, e.g. "revision linux (v6.1-rc3): cache-flush-local-addr boot_rate
  /// 0.3: taken this boot" ("dormant this boot" when not taken).
  std::string ToString() const;
};

/// A revision folder as one boot of the board took it.
struct BootedRevision {
  std::vector<LoadedRevision> files;  // the revision files present, linux first
  std::vector<BootSwitch> switches;   // every fault switch of `files`, in that order

  /// What the board logs on its console: per file, one BootSwitch::ToString() line per
  /// switch, or "revision xen (RELEASE-4.14.0): no fault switches" for a file without
  /// any. Empty when `files` is.
  std::vector<std::string> ConsoleLines() const;
  /// The ids of the taken switches, in switch order: the faults this boot injects.
  std::vector<std::string> TakenFaults() const;
};

/// Loads the revision folder `dir` (LoadRevisionDir against the catalogue) and decides
/// every fault switch for the boot whose model seed is `seed` (sim::FaultTakenThisBoot).
/// Throws ConfigError if the folder is missing or a file is unreadable or invalid.
BootedRevision BootRevision(const std::filesystem::path& dir, uint64_t seed);

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
