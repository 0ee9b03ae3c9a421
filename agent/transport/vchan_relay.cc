#include "agent/transport/vchan_relay.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <tuple>

#include <boost/asio/ip/address.hpp>

#include "agent/transport/fd_channel.h"
#include "agent/transport/pump.h"
#include "agent/transport/vchan_channel.h"
#include "agent/transport/xen_domains.h"

namespace dmahil::agent::transport {

namespace asio = boost::asio;
using asio::ip::tcp;

ChannelConnector MakeVchanConnector(int domid, const std::string& xs_relative_path,
                                    std::chrono::milliseconds timeout) {
  const std::string path = GuestXenstorePath(domid, xs_relative_path);
  return [domid, path, timeout](const StopSignal& stop) -> std::unique_ptr<ByteChannel> {
    return VchanChannel::ConnectWithRetry(domid, path, timeout, &stop);
  };
}

VchanRelay::VchanRelay(const std::string& address, std::uint16_t port, ChannelConnector connect)
    : connect_(std::move(connect)), acceptor_(io_) {
  const std::string where = address + ":" + std::to_string(port);
  boost::system::error_code ec;
  const asio::ip::address addr = asio::ip::make_address(address, ec);
  if (ec) throw TransportError("relay: invalid listen address '" + address + "': " + ec.message());
  const tcp::endpoint endpoint(addr, port);
  if (acceptor_.open(endpoint.protocol(), ec) ||
      acceptor_.set_option(tcp::acceptor::reuse_address(true), ec) ||
      acceptor_.bind(endpoint, ec) ||
      acceptor_.listen(asio::socket_base::max_listen_connections, ec)) {
    throw TransportError("relay: cannot listen on TCP " + where + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
}

VchanRelay::~VchanRelay() {
  Stop();
  if (worker_.joinable()) worker_.join();
  for (auto& [fd, ignored] : waiting_) close(fd);  // none left unless Run() never ran
}

void VchanRelay::Run() {
  spdlog::info("relay: listening on TCP port {}", port_);
  StartAccept();
  io_.run();
  if (worker_.joinable()) worker_.join();
  if (!accept_error_.empty()) throw TransportError(accept_error_);
}

void VchanRelay::Stop() {
  stop_.Set();  // ends a running Pump / connector
  io_.stop();   // ends Run(); the acceptor is closed by the destructor
}

void VchanRelay::StartAccept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    OnAccept(ec, std::move(socket));
  });
}

void VchanRelay::OnAccept(const boost::system::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || stop_.IsSet()) return;
  if (ec) {
    accept_error_ =
        "relay: accept on TCP port " + std::to_string(port_) + " failed: " + ec.message();
    io_.stop();
    return;
  }
  boost::system::error_code peer_ec;
  const tcp::endpoint remote = socket.remote_endpoint(peer_ec);
  const std::string peer = peer_ec
                               ? std::string("unknown peer")
                               : remote.address().to_string() + ":" + std::to_string(remote.port());
  socket.set_option(tcp::no_delay(true), peer_ec);  // small HTTP/2 frames: no Nagle delay
  {
    std::lock_guard lock(mutex_);
    if (busy_) {
      if (waiting_.size() >= kMaxWaiting) {
        spdlog::warn("relay: refusing TCP connection from {}: relaying {} and {} waiting", peer,
                     busy_peer_, waiting_.size());
        socket.close(peer_ec);
      } else {
        spdlog::info("relay: TCP connection from {} waits: relaying {}", peer, busy_peer_);
        waiting_.emplace_back(socket.release(), peer);
      }
      StartAccept();
      return;
    }
    busy_ = true;
  }
  if (worker_.joinable()) worker_.join();  // the previous worker has finished (busy_ was false)
  worker_ = std::thread(&VchanRelay::Worker, this, socket.release(), peer);
  StartAccept();
}

void VchanRelay::Worker(int tcp_fd, std::string peer) {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      busy_peer_ = peer;
    }
    Relay(tcp_fd, peer);
    std::lock_guard lock(mutex_);
    if (waiting_.empty() || stop_.IsSet()) {
      for (auto& [fd, ignored] : waiting_) close(fd);
      waiting_.clear();
      busy_ = false;
      busy_peer_.clear();
      return;
    }
    std::tie(tcp_fd, peer) = std::move(waiting_.front());
    waiting_.pop_front();
  }
}

void VchanRelay::Relay(int tcp_fd, const std::string& peer) {
  spdlog::info("relay: TCP connection from {}", peer);
  try {
    FdChannel tcp_side(tcp_fd);
    std::unique_ptr<ByteChannel> far = connect_(stop_);
    if (far) {
      const PumpResult r = Pump(tcp_side, *far, PumpOptions{.stop = &stop_});
      const char* how = r.end == PumpResult::End::kAClosed   ? "TCP side closed"
                        : r.end == PumpResult::End::kBClosed ? "guest side closed"
                                                             : "stopped";
      spdlog::info("relay: connection from {} ended ({}): {} bytes to the guest, {} back", peer,
                   how, r.a_to_b_bytes, r.b_to_a_bytes);
      far->Close();  // the guest sees its client leave and serves a fresh connection
    }
  } catch (const std::exception& e) {
    spdlog::error("relay: connection from {} failed: {}", peer, e.what());
  }
}

}  // namespace dmahil::agent::transport
