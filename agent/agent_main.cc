// dmahil-agent: the on-board agent (docs/architecture.md §3) with the linux-xen backend, one per
// domain.
//
//   dom0:  dmahil-agent --role dom0 --listen 0.0.0.0:7000 --engine-listen 0.0.0.0:7002
//                       --guest-relay 0.0.0.0:7001 --guest-domain domu
//   domU:  dmahil-agent --role guest --vchan
//
// dom0 serves the Agent gRPC service on --listen, the DMA engine (dmahil.ko's edu, the
// device protocol of docs/device-protocol.md) on --engine-listen, and relays each TCP
// connection on --guest-relay to the guest agent's vchan. The guest, which has no network,
// serves the same gRPC service over that vchan (agent/transport/). On the qemu-xen board
// QEMU's user networking forwards host loopback ports to these. Logs go to stderr (the
// board's console); "dmahil-agent: <role> ready" is printed once everything listens.
// Exit status: 0 after SIGTERM/SIGINT, 1 if a device, port or xenstore cannot be opened
// (the message names it), 2 for bad arguments.
#include <poll.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "agent/agent_service.h"
#include "agent/grpc_server.h"
#include "agent/linux_xen/engine_port.h"
#include "agent/linux_xen/linux_xen_backend.h"
#include "agent/transport/grpc_over_channel.h"
#include "agent/transport/stop_signal.h"
#include "agent/transport/vchan_channel.h"
#include "agent/transport/vchan_relay.h"
#include "agent/transport/xen_domains.h"
#include "common/host_port.h"
#include "firmware/host/device_server.h"

namespace {

using dmahil::agent::transport::StopSignal;

StopSignal* g_stop = nullptr;

extern "C" void OnSignal(int) {
  if (g_stop) g_stop->Set();
}

/// "host:port" -> host and port (common/host_port.h); throws std::invalid_argument
/// naming the option and what is wrong.
std::pair<std::string, uint16_t> SplitEndpoint(const std::string& ep, const char* option) {
  if (const std::string why = dmahil::HostPortProblem(ep); !why.empty())
    throw std::invalid_argument(std::string(option) + " " + ep + ": " + why +
                                " (expected ADDRESS:PORT)");
  dmahil::HostPort hp = dmahil::ParseHostPort(ep);
  return {std::move(hp.host), hp.port};
}

}  // namespace

int main(int argc, char** argv) {
  namespace lx = dmahil::agent::linux_xen;
  namespace tr = dmahil::agent::transport;
  CLI::App app{"dmahil-agent: the on-board agent (linux-xen backend) for one domain"};
  std::string role_name;
  std::string board = "unknown";
  std::string listen;
  std::string engine_listen;
  std::string relay_listen;
  std::string guest_domain = "domu";
  bool vchan = false;
  std::string block_device;
  std::string block_grants;
  bool destructive = false;
  app.add_option("--role", role_name, "dom0 or guest")
      ->required()
      ->check(CLI::IsMember({"dom0", "guest"}));
  app.add_option("--backend", "linux-xen (the sim backend runs in dmahil-vboard)")
      ->check(CLI::IsMember({"linux-xen"}));
  app.add_option("--board", board, "board name reported by GetInfo");
  app.add_option("--listen", listen, "serve gRPC on ADDRESS:PORT");
  app.add_option("--engine-listen", engine_listen,
                 "dom0: serve the DMA engine (device protocol) on ADDRESS:PORT");
  app.add_option("--guest-relay", relay_listen,
                 "dom0: relay TCP on ADDRESS:PORT to the guest agent's vchan");
  app.add_option("--guest-domain", guest_domain, "dom0: the guest's Xen domain name");
  app.add_flag("--vchan", vchan, "guest: serve gRPC over a vchan to dom0");
  app.add_option("--block-device", block_device,
                 "BlockIo's device, opened O_DIRECT (a domU's PV disk, e.g. /dev/xvdb; dom0's "
                 "test disk, docs/lab-block-device.md); refused while mounted or while it "
                 "carries a file system or partition table signature");
  app.add_option("--block-grants", block_grants,
                 "guest: how xen-blkfront connected --block-device, as its kernel message says "
                 "(e.g. \"persistent grants: disabled\"), reported in GetInfo")
      ->check(CLI::IsMember({"persistent grants: enabled", "persistent grants: disabled"}));
  app.add_flag("--destructive", destructive,
               "--block-device may carry a signature: BlockIo destroys it (the board file's "
               "test_disk says destructive: true)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help: 0; any bad argument: 2
  }

  spdlog::set_pattern("dmahil-agent %l: %v");  // no colour codes: the console is a log
  const dmahil::v1::Role role =
      role_name == "dom0" ? dmahil::v1::ROLE_DOM0 : dmahil::v1::ROLE_GUEST;
  try {
    if (role == dmahil::v1::ROLE_GUEST && (!engine_listen.empty() || !relay_listen.empty()))
      throw std::invalid_argument("--engine-listen and --guest-relay are dom0 options");
    if (role == dmahil::v1::ROLE_DOM0 && vchan)
      throw std::invalid_argument("--vchan is a guest option");
    if (!block_grants.empty() && block_device.empty())
      throw std::invalid_argument("--block-grants describes --block-device: give both");
    if (listen.empty() && !vchan) throw std::invalid_argument("give --listen or --vchan");
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "dmahil-agent: %s\n", e.what());
    return 2;
  }

  try {
    StopSignal stop;
    g_stop = &stop;
    std::signal(SIGTERM, OnSignal);
    std::signal(SIGINT, OnSignal);

    const uint32_t domid =
        role == dmahil::v1::ROLE_DOM0 ? 0 : static_cast<uint32_t>(tr::OwnDomainId());
    lx::LinuxXenDevices devices = lx::OpenLinuxXenDevices(role);
    if (!block_device.empty()) {
      devices.block = lx::BlockDevice::Open(block_device, destructive);
      devices.block_grants = block_grants;
      spdlog::info("block device {}: {} bytes, {}-byte sectors, O_DIRECT{}", block_device,
                   devices.block->bytes(), devices.block->sector_size(),
                   devices.block->signature().empty()
                       ? ""
                       : fmt::format("; its \"{}\" signature will be destroyed (--destructive)",
                                     devices.block->signature()));
    }
    std::shared_ptr<lx::Kmod> kmod = devices.kmod;
    lx::LinuxXenBackend backend(role, domid, board, std::move(devices));
    dmahil::agent::AgentService service(backend);

    grpc::ServerBuilder builder;
    int grpc_port = 0;
    if (!listen.empty())
      builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &grpc_port);
    dmahil::agent::AddAgentServerOptions(builder);  // also for the guest's server over vchan
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || (!listen.empty() && grpc_port == 0))
      throw std::runtime_error("cannot serve gRPC on " + (listen.empty() ? "(none)" : listen));

    std::unique_ptr<lx::KmodEnginePort> port;
    std::unique_ptr<dmahil::device_host::DeviceServer> engine;
    if (!engine_listen.empty()) {
      const auto [host, p] = SplitEndpoint(engine_listen, "--engine-listen");
      port = std::make_unique<lx::KmodEnginePort>(kmod);
      engine = std::make_unique<dmahil::device_host::DeviceServer>(
          *port, p,
          dmahil::firmware::EngineInfo{"edu (dmahil.ko)", dmahil::firmware::kMaxDataBytes, 64},
          host);
      engine->Start();
    }

    std::unique_ptr<tr::VchanRelay> relay;
    std::thread relay_thread;
    if (!relay_listen.empty()) {
      const auto [host, p] = SplitEndpoint(relay_listen, "--guest-relay");
      // The guest may be created after this agent starts (and again after a reboot of
      // the domU): find its domid for each relayed connection.
      tr::ChannelConnector connect = [name = guest_domain](const StopSignal& s) {
        const int guest = tr::FindDomainIdByName(name);
        return tr::MakeVchanConnector(guest, tr::kAgentVchanPath, std::chrono::seconds(30))(s);
      };
      relay = std::make_unique<tr::VchanRelay>(host, p, std::move(connect));
      relay_thread = std::thread([&relay] {
        try {
          relay->Run();
        } catch (const std::exception& e) {
          spdlog::error("guest relay stopped: {}", e.what());
        }
      });
    }

    spdlog::info(
        "{} (domid {}) serving{}{}{}{}", role_name, domid,
        listen.empty() ? "" : " gRPC on " + listen,
        engine_listen.empty() ? "" : ", engine on " + engine_listen,
        relay_listen.empty() ? "" : ", guest relay on " + relay_listen + " -> " + guest_domain,
        vchan ? " gRPC over vchan " + std::string(tr::kAgentVchanPath) : "");
    std::printf("dmahil-agent: %s ready\n", role_name.c_str());
    std::fflush(stdout);

    if (vchan) {
      tr::VchanServeOptions options;
      options.ring_bytes = tr::AgentVchanRingBytes(dmahil::agent::linux_xen::LinuxPageSize());
      tr::ServeGrpcOverVchan(*server, options, stop);
    } else {
      pollfd pfd{stop.Fd(), POLLIN, 0};
      while (!stop.IsSet()) ::poll(&pfd, 1, -1);
    }
    spdlog::info("stopping");
    if (relay) {
      relay->Stop();
      relay_thread.join();
    }
    if (engine) engine->Stop();
    server->Shutdown();
    g_stop = nullptr;
    return 0;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    std::printf("dmahil-agent: %s FAILED: %s\n", role_name.c_str(), e.what());
    std::fflush(stdout);
    return 1;
  }
}
