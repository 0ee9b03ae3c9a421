// dom0 side: relays TCP connections (the controller's, forwarded from the host) to the
// guest agent's vchan, so the guest, which has no network, serves gRPC to the controller.
//
// One connection at a time (the guest serves one vchan client at a time). A connection
// that arrives while another is relayed waits, logged, in a queue of kMaxWaiting and is
// relayed when the current one ends; beyond that it is refused (closed, logged). Waiting
// rather than refusing matters: a gRPC client that drops its channel and makes a new one
// connects before the relay has seen the old TCP connection close, and a refused
// connection fails the new channel's first call (UNAVAILABLE "Socket closed").
// For each connection the far side is connected anew (a VchanChannel client in
// production) and pumped both ways; when either side closes, both are closed, so the
// guest sees its vchan client leave and listens afresh.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "agent/transport/byte_channel.h"
#include "agent/transport/stop_signal.h"

namespace dmahil::agent::transport {

/// Opens the far side for one relayed connection, or returns nullptr once `stop` is set.
/// Throws TransportError when it cannot (the TCP connection is then closed).
using ChannelConnector = std::function<std::unique_ptr<ByteChannel>(const StopSignal& stop)>;

/// A connector for the guest agent's vchan: VchanChannel::ConnectWithRetry(domid,
/// /local/domain/<domid>/<xs_relative_path>, timeout).
ChannelConnector MakeVchanConnector(int domid, const std::string& xs_relative_path,
                                    std::chrono::milliseconds timeout);

class VchanRelay {
 public:
  /// Binds and listens on `address`:`port` (port 0: any free port, see port()). Throws
  /// TransportError naming the endpoint if the address is invalid or bind/listen fails.
  VchanRelay(const std::string& address, std::uint16_t port, ChannelConnector connect);
  ~VchanRelay();
  VchanRelay(const VchanRelay&) = delete;
  VchanRelay& operator=(const VchanRelay&) = delete;

  /// Connections that may wait while another is relayed; more are refused.
  static constexpr std::size_t kMaxWaiting = 4;

  /// The bound TCP port.
  std::uint16_t port() const { return port_; }

  /// Accepts and relays until Stop(); the relayed connection runs on a worker thread.
  /// Throws TransportError if accepting fails for a reason other than Stop().
  void Run();

  /// Ends Run() and any relayed connection soon; thread-safe, idempotent.
  void Stop();

 private:
  void StartAccept();
  void OnAccept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  void Worker(int tcp_fd, std::string peer);
  void Relay(int tcp_fd, const std::string& peer);

  ChannelConnector connect_;
  StopSignal stop_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  bool busy_ = false;                                // a worker is relaying; guarded by mutex_
  std::string busy_peer_;                            // guarded by mutex_
  std::deque<std::pair<int, std::string>> waiting_;  // fd, peer; guarded by mutex_
  std::thread worker_;        // relays the current connection, then the waiting ones
  std::string accept_error_;  // set by OnAccept when accepting failed
};

}  // namespace dmahil::agent::transport
