// DeviceClient over TCP (virtual and networked DMA engines): the device protocol framed
// by common/framing.h, synchronous, every step bounded by a timeout.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "controller/device/device_client.h"

namespace dmahil::controller {

/// A connection to a DMA engine at host:port.
class TcpDeviceClient final : public DeviceClient {
 public:
  /// Connects to `host` (an IP address or a resolvable name) at `port`. `timeout_ms`
  /// bounds the connect and, later, each Transact as a whole. Throws DeviceError naming
  /// host:port if it cannot connect in time.
  TcpDeviceClient(std::string host, uint16_t port, uint32_t timeout_ms = 5000);
  ~TcpDeviceClient() override;

  TcpDeviceClient(const TcpDeviceClient&) = delete;
  TcpDeviceClient& operator=(const TcpDeviceClient&) = delete;

  /// Sends `request` and waits for its response. A request with tag 0 gets the next tag
  /// of this client's counter; the response must echo the tag. Throws DeviceError (naming
  /// host:port) on a timeout, a lost connection, an oversize request, or a malformed or
  /// mismatched response; the connection is then dropped and the next Transact
  /// reconnects.
  ///
  /// A device server's refusal (docs/device-protocol.md §1.1: one DEVICE_BAD_REQUEST frame
  /// with tag 0, then the connection is closed; sent for a connection over its limit, an
  /// idle connection evicted, a frame past its deadline, an oversize or undecodable frame)
  /// is a DeviceError carrying the server's message: "device host:port: the device server
  /// refused request tag N and closed the connection: <message>". Such a frame is also
  /// looked for when sending failed (the server may reset a connection it refused while a
  /// large request is still going out).
  ///
  /// Memory: the response payload is read in pieces of at most framing::kReadChunkBytes
  /// (64 KiB) into a buffer that grows with the bytes received
  /// (framing::NextPayloadCapacity), never with the announced length alone: a device that
  /// announces 16 MiB and sends less costs about what it sent, not 16 MiB.
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override;

  /// "host:port", as used in error messages.
  std::string endpoint() const;

 private:
  using Clock = std::chrono::steady_clock;

  void Connect();
  void Disconnect();
  // Runs the pending async op until `deadline`; throws DeviceError on timeout or `ec`
  // (`what` names the step in the message). With a nonzero `request_tag` (sending that
  // request), an `ec` first looks for a server's refusal frame already received
  // (PendingRefusal) and reports that instead.
  void Await(Clock::time_point deadline, const std::string& what,
             const boost::system::error_code& ec, uint64_t request_tag = 0);
  // Reads, without waiting, a whole response frame the device already sent and returns
  // the error message for it if it is a refusal (tag 0, DEVICE_BAD_REQUEST); "" if there
  // is none (nothing received, a partial frame, or not a refusal). The socket is open.
  std::string PendingRefusal(uint64_t request_tag);
  // The DeviceError message for a refusal frame `resp` answering request `request_tag`.
  static std::string RefusalMessage(const v1::DeviceResponse& resp, uint64_t request_tag);
  [[noreturn]] void Fail(const std::string& what) const;

  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  uint64_t next_tag_ = 0;
};

}  // namespace dmahil::controller
