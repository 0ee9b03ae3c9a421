// The host build of the DMA engine, transport side: serves the device protocol
// (proto/dmahil/v1/device.proto, framed by common/framing.h) over TCP on 127.0.0.1 — "the
// virtual DMA engine" of virtual boards.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "firmware/engine.h"
#include "firmware/hal.h"

namespace dmahil::device_host {

/// Connections a DeviceServer serves at once unless told otherwise.
inline constexpr size_t kDefaultMaxConnections = 8;

/// Limits of a DeviceServer (the class comment says what they bound).
struct DeviceServerOptions {
  /// Connections served at once (at least 1). A connection over the limit is answered
  /// with one DEVICE_BAD_REQUEST frame (tag 0) naming the limit, then closed.
  size_t max_connections = kDefaultMaxConnections;
  /// A request frame must be whole within this time of its first byte, and the client
  /// must take its response within this time of the response being ready (ms, above 0).
  /// The execution of the request itself is not limited.
  std::chrono::milliseconds frame_timeout{10'000};
  /// Time between frames (ms, 0 or more) after which a connection may lose its slot to a
  /// new connection while the server is full. Idle connections are not closed otherwise.
  std::chrono::milliseconds idle_timeout{60'000};
};

/// A TCP server executing device requests on one CommandProcessor over a MemoryPort.
/// Requests from all connections are executed one at a time on the server's own thread.
///
/// Every refusal says what was wrong: the server answers one DeviceResponse frame, status
/// DEVICE_BAD_REQUEST, tag 0, with a message, then closes the connection, when
///  - a length prefix is above framing::kMaxFramePayload (the message names the length
///    and the limit; the stream cannot be resynchronised);
///  - a whole frame is not a DeviceRequest (the parser's message);
///  - a request frame is not whole frame_timeout after its first byte (the message gives
///    the bytes received of the header or payload);
///  - a new connection finds max_connections connections (the message gives the count
///    and the limit);
///  - the connection, idle between frames for idle_timeout or more, makes room for a new
///    connection while the server is full (the one idle longest goes first).
/// A client that disconnects, does not take its response within frame_timeout, or fails
/// a socket operation is logged (spdlog) and its connection closed. The server keeps
/// serving the other connections in every case. Bytes a client sent after a refused frame
/// are discarded (the client may see a reset after the refusal).
///
/// Memory. A connection buffers a 4-byte header, a payload that grows with the bytes
/// received (reads of at most framing::kReadChunkBytes, 64 KiB; capacity at most
/// max(2 x received, received + 64 KiB), never above the announced length, so at most
/// 16 MiB) and one encoded response (at most 4 + 1 MiB + 1 KiB bytes, a Read's). So a
/// header alone costs 64 KiB, not the length it announces, and all connections together
/// buffer at most max_connections x (16 MiB + 1 MiB + 1 KiB + 4) bytes (about 136 MiB with
/// the defaults, reached only by clients that send that much), plus the decoded copy of
/// the one request being executed. A connection over the limit costs its socket and one
/// small refusal frame, written without waiting.
class DeviceServer {
 public:
  /// Binds `bind_address`:`tcp_port` (0: an ephemeral port, see port()) and listens; does
  /// not serve until Start(). `memory` must outlive the server. The default address is
  /// loopback; the qemu-xen dom0 agent binds 0.0.0.0 inside the guest, where QEMU's user
  /// networking forwards a host loopback port to it. Throws boost::system::system_error
  /// if the address is not an IP address or the port cannot be bound, and
  /// std::invalid_argument if `options` has max_connections 0, a frame_timeout of 0 ms or
  /// less, or a negative idle_timeout.
  explicit DeviceServer(firmware::MemoryPort& memory, uint16_t tcp_port = 0,
                        const firmware::EngineInfo& info = {"dmahil-virtual-engine",
                                                            firmware::kMaxDataBytes, 64},
                        const std::string& bind_address = "127.0.0.1",
                        const DeviceServerOptions& options = {});
  /// Stops the server (see Stop()).
  ~DeviceServer();

  DeviceServer(const DeviceServer&) = delete;
  DeviceServer& operator=(const DeviceServer&) = delete;

  /// The TCP port listened on (the ephemeral one if 0 was asked).
  uint16_t port() const;

  /// Connections holding a slot now (at most options.max_connections). Thread-safe.
  size_t connections() const;

  /// Bytes currently allocated (heap capacity) for the payload and response buffers of
  /// all connections; the class comment gives its bounds. Thread-safe.
  size_t buffered_bytes() const;

  /// Starts serving on a new thread. Call at most once.
  void Start();

  /// Closes the listener and every connection and joins the thread. Idempotent; a
  /// stopped server cannot be restarted.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dmahil::device_host
