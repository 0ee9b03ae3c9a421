// The host build of the DMA engine, transport side: serves the device protocol
// (proto/dmahil/v1/device.proto, framed by common/framing.h) over TCP on 127.0.0.1 — "the
// virtual DMA engine" of virtual boards.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "firmware/engine.h"
#include "firmware/hal.h"

namespace dmahil::device_host {

/// A TCP server executing device requests on one CommandProcessor over a MemoryPort.
/// Requests from all connections are executed one at a time on the server's own thread.
/// A client that disconnects, sends an oversize or unparsable frame, or fails a socket
/// operation is logged (spdlog) and its connection closed; the server keeps serving. A
/// whole frame that is not a DeviceRequest is first answered with DEVICE_BAD_REQUEST
/// (tag 0) saying so; an oversize length prefix is not answered.
class DeviceServer {
 public:
  /// Binds `bind_address`:`tcp_port` (0: an ephemeral port, see port()) and listens; does
  /// not serve until Start(). `memory` must outlive the server. The default address is
  /// loopback; the qemu-xen dom0 agent binds 0.0.0.0 inside the guest, where QEMU's user
  /// networking forwards a host loopback port to it. Throws boost::system::system_error
  /// if the address is not an IP address or the port cannot be bound.
  explicit DeviceServer(firmware::MemoryPort& memory, uint16_t tcp_port = 0,
                        const firmware::EngineInfo& info = {"dmahil-virtual-engine",
                                                            firmware::kMaxDataBytes, 64},
                        const std::string& bind_address = "127.0.0.1");
  /// Stops the server (see Stop()).
  ~DeviceServer();

  DeviceServer(const DeviceServer&) = delete;
  DeviceServer& operator=(const DeviceServer&) = delete;

  /// The TCP port listened on (the ephemeral one if 0 was asked).
  uint16_t port() const;

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
