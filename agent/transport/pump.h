// Pump: moves bytes both ways between two ByteChannels on the calling thread until one
// side closes (or a stop is requested). The same code relays TCP <-> vchan in dom0 and
// vchan <-> gRPC's socketpair in the guest.
#pragma once

#include <cstddef>
#include <cstdint>

#include "agent/transport/byte_channel.h"
#include "agent/transport/stop_signal.h"

namespace dmahil::agent::transport {

struct PumpOptions {
  /// Bytes buffered per direction (one ReadSome at most this big). 64 KiB, the vchan ring
  /// size, so one read can fill a ring.
  std::size_t buffer_bytes = 64 * 1024;
  /// When set, Pump returns (kStopped) soon after it is set. Not owned.
  const StopSignal* stop = nullptr;
};

struct PumpResult {
  enum class End { kAClosed, kBClosed, kStopped };
  End end = End::kStopped;
  std::uint64_t a_to_b_bytes = 0;  // delivered to b
  std::uint64_t b_to_a_bytes = 0;  // delivered to a
};

/// Pumps a -> b and b -> a until:
///  - one side's read reports closed: the bytes already read from it are still delivered
///    to the other side (as far as it accepts them), then Pump returns kAClosed/kBClosed;
///  - one side's write reports closed (its peer left): returns that side's kXClosed;
///  - options.stop is set: returns kStopped (buffered bytes are dropped).
/// Pump never closes the channels: the caller closes both, which is what propagates the
/// close to the other side. Throws TransportError from the channels, or if poll(2) fails.
PumpResult Pump(ByteChannel& a, ByteChannel& b, const PumpOptions& options = {});

}  // namespace dmahil::agent::transport
