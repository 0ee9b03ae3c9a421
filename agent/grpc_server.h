// What every agent gRPC server is built with, in one place so that dmahil-agent's server
// (agent/agent_main.cc, TCP or vchan) and dmahil-vboard's two (agent/vboard.cc) cannot
// drift apart: today, that no refusal ever reaches a client without a message.
#pragma once

#include <string>
#include <string_view>

#include <grpcpp/server_builder.h>
#include <grpcpp/support/status.h>

namespace dmahil::agent {

/// Largest request an agent server accepts (bytes): the largest real one, MapForeign or
/// ComposeBuffer with kMaxPages entries, is about 10 KiB. A larger one is refused by gRPC
/// with RESOURCE_EXHAUSTED before it is decoded.
inline constexpr int kMaxAgentRequestBytes = 1 << 20;
/// Requests an agent server runs at once (its sync server's threads, gRPC ResourceQuota);
/// the controller sends one at a time per agent. A request beyond is refused with
/// RESOURCE_EXHAUSTED, so a flood of connections cannot grow the agent's threads.
inline constexpr int kMaxAgentThreads = 16;

/// Adds the agents' standard server set-up to `builder`: requests of at most
/// kMaxAgentRequestBytes, at most kMaxAgentThreads threads, and a server interceptor that gives
/// every non-OK status sent without a message the message RefusalMessage() builds (gRPC
/// C++ itself sends INTERNAL "" for a request whose bytes do not parse as the method's
/// request message, and UNIMPLEMENTED "" for an unknown method). Call it once per
/// builder, before BuildAndStart; it replaces interceptor creators set before.
void AddAgentServerOptions(grpc::ServerBuilder& builder);

/// The message a refusal with status `code` and no message gets, for the gRPC method
/// `method` as the server names it ("/dmahil.v1.Agent/DmaMap"):
///   - `undecodable` (the request's bytes did not parse): "<method>: the request could not
///     be decoded as a <request type, e.g. dmahil.v1.DmaMapRequest> (...)";
///   - UNIMPLEMENTED: "<method>: this agent does not serve that method (...)", or for a
///     method the server has no handler for at all (gRPC names it "unknown", not by its
///     path): "the method called is not one this agent serves (...)";
///   - otherwise: "<method>: refused with <CODE> and no message (...)".
/// The request type is looked up in the linked protobuf descriptors; an unknown method
/// gets "the method's request message".
std::string RefusalMessage(std::string_view method, grpc::StatusCode code, bool undecodable);

}  // namespace dmahil::agent
