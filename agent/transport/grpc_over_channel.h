// Guest side: serves a gRPC server over a vchan instead of a network port.
//
// For each client (dom0's relay connecting the vchan): a socketpair is made, one end is
// handed to gRPC as a fresh HTTP/2 connection (grpc::AddInsecureChannelFromFd,
// grpcpp/server_posix.h), and the other end is pumped to and from the vchan until either
// closes; then both are closed (gRPC tears that connection down) and the loop waits for
// the next client. So a controller that reconnects gets a fresh HTTP/2 connection.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "agent/transport/byte_channel.h"
#include "agent/transport/stop_signal.h"
#include "agent/transport/vchan_channel.h"

namespace grpc {
class Server;
}

namespace dmahil::agent::transport {

/// Waits for the next client and returns its channel, or nullptr once `stop` is set.
/// Throws TransportError if no channel can be offered at all.
using ChannelAcceptor = std::function<std::unique_ptr<ByteChannel>(const StopSignal& stop)>;

/// Serves `server` (built and started, with or without listening ports) to one client at a
/// time from `accept`, until `stop` is set. A session's TransportError is logged and the
/// loop goes on; an acceptor's TransportError propagates (after closing nothing of gRPC's
/// other connections). Returns the number of sessions served.
int ServeGrpcOverChannels(grpc::Server& server, const ChannelAcceptor& accept,
                          const StopSignal& stop);

struct VchanServeOptions {
  int peer_domid = 0;                             // the client: dom0
  std::string xs_path = kAgentVchanPath;          // relative to /local/domain/<own domid>
  std::size_t ring_bytes = kAgentVchanRingBytes;  // each way
};

/// ServeGrpcOverChannels with a new VchanChannel::Listen per client. Throws TransportError
/// if a vchan server cannot be created (message names path and errno).
int ServeGrpcOverVchan(grpc::Server& server, const VchanServeOptions& options,
                       const StopSignal& stop);

}  // namespace dmahil::agent::transport
