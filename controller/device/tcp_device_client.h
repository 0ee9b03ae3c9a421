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
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override;

  /// "host:port", as used in error messages.
  std::string endpoint() const;

 private:
  using Clock = std::chrono::steady_clock;

  void Connect();
  void Disconnect();
  // Runs the pending async op until `deadline`; throws DeviceError on timeout or `ec`.
  void Await(Clock::time_point deadline, const char* what, const boost::system::error_code& ec);
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
