#include "agent/transport/grpc_over_channel.h"

#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

#include "agent/transport/fd_channel.h"
#include "agent/transport/pump.h"

namespace dmahil::agent::transport {
namespace {

const char* EndName(PumpResult::End end) {
  switch (end) {
    case PumpResult::End::kAClosed:
      return "gRPC closed the connection";
    case PumpResult::End::kBClosed:
      return "the client closed the channel";
    case PumpResult::End::kStopped:
      return "stopped";
  }
  return "?";
}

}  // namespace

int ServeGrpcOverChannels(grpc::Server& server, const ChannelAcceptor& accept,
                          const StopSignal& stop) {
  int sessions = 0;
  while (!stop.IsSet()) {
    std::unique_ptr<ByteChannel> client = accept(stop);
    if (!client) break;
    ++sessions;
    try {
      auto [grpc_end, our_end] = MakeSocketPair();
      FdChannel local(our_end);
      // gRPC owns grpc_end from here on (it closes it when the connection ends).
      grpc::AddInsecureChannelFromFd(&server, grpc_end);
      spdlog::info("transport: session {} connected; serving gRPC over it", sessions);
      const PumpResult r = Pump(local, *client, PumpOptions{.stop = &stop});
      spdlog::info("transport: session {} ended ({}): {} bytes to the client, {} from it", sessions,
                   EndName(r.end), r.a_to_b_bytes, r.b_to_a_bytes);
    } catch (const TransportError& e) {
      spdlog::error("transport: session {} failed: {}", sessions, e.what());
    }
    client->Close();
  }
  return sessions;
}

int ServeGrpcOverVchan(grpc::Server& server, const VchanServeOptions& options,
                       const StopSignal& stop) {
  spdlog::info("transport: serving gRPC on vchan '{}' for domain {} ({} byte rings)",
               options.xs_path, options.peer_domid, options.ring_bytes);
  return ServeGrpcOverChannels(
      server,
      [&options](const StopSignal& s) -> std::unique_ptr<ByteChannel> {
        auto vchan = VchanChannel::Listen(options.peer_domid, options.xs_path, options.ring_bytes);
        if (!vchan->WaitForClient(&s)) return nullptr;
        return vchan;
      },
      stop);
}

}  // namespace dmahil::agent::transport
