#include "agent/vboard.h"

#include <stdexcept>

#include <fmt/format.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "agent/grpc_server.h"
#include "sim/faults.h"

namespace dmahil::agent {
namespace {

std::unique_ptr<grpc::Server> Serve(AgentService& service, std::string* endpoint) {
  int port = 0;
  grpc::ServerBuilder builder;
  // Loopback only; mTLS between controller and agents comes with real boards (docs/architecture.md
  // §12).
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  AddAgentServerOptions(builder);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) throw std::runtime_error("cannot bind a loopback gRPC port");
  *endpoint = fmt::format("127.0.0.1:{}", port);
  return server;
}

// "revision linux (describe)", or "revision linux" without a describe text.
std::string RevisionName(std::string_view tree, std::string_view describe) {
  return fmt::format("revision {}{}", tree, describe.empty() ? "" : fmt::format(" ({})", describe));
}

}  // namespace

CatalogueFault LookupCatalogueFault(std::string_view id) {
  const sim::FaultInfo* f = sim::FindFault(id);
  if (f == nullptr) return {};
  return {true, f->modelled(), std::string(FaultTreeName(f->tree))};
}

std::string BootSwitch::ToString() const {
  return fmt::format("{}: {} boot_rate {}: {} this boot", RevisionName(tree, describe), id,
                     boot_rate, taken ? "taken" : "dormant");
}

std::vector<std::string> BootedRevision::ConsoleLines() const {
  std::vector<std::string> lines;
  size_t next = 0;  // switches are in file order
  for (const LoadedRevision& f : files) {
    if (f.revision.fault_size() == 0)
      lines.push_back(RevisionName(f.revision.tree(), f.revision.describe()) +
                      ": no fault switches");
    for (int i = 0; i < f.revision.fault_size() && next < switches.size(); ++i)
      lines.push_back(switches[next++].ToString());
  }
  return lines;
}

std::vector<std::string> BootedRevision::TakenFaults() const {
  std::vector<std::string> ids;
  for (const BootSwitch& s : switches)
    if (s.taken) ids.push_back(s.id);
  return ids;
}

BootedRevision BootRevision(const std::filesystem::path& dir, uint64_t seed) {
  BootedRevision out;
  out.files = LoadRevisionDir(dir, LookupCatalogueFault);
  for (const LoadedRevision& r : out.files)
    for (const v1::FaultSwitch& f : r.revision.fault()) {
      const double rate = f.has_boot_rate() ? f.boot_rate() : 1.0;
      out.switches.push_back({r.revision.tree(), r.revision.describe(), f.id(), rate,
                              sim::FaultTakenThisBoot(seed, f.id(), rate)});
    }
  return out;
}

VirtualBoardServer::VirtualBoardServer(const v1::Board& board,
                                       const std::vector<std::string>& faults, uint64_t seed)
    : board_(board, sim::FaultSet::Parse(faults), seed),
      dom0_backend_(board_, v1::ROLE_DOM0),
      guest_backend_(board_, v1::ROLE_GUEST),
      dom0_service_(dom0_backend_),
      guest_service_(guest_backend_),
      port_(board_, &dom0_backend_) {
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
