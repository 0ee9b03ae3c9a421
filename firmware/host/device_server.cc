#include "firmware/host/device_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "common/framing.h"
#include "dmahil/v1/device.pb.h"
#include "firmware/host/codec.h"

namespace dmahil::device_host {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

// One client connection: read a frame, execute it, write the response, repeat.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, firmware::CommandProcessor& engine)
      : socket_(std::move(socket)), engine_(engine) {
    error_code ec;
    const tcp::endpoint peer = socket_.remote_endpoint(ec);
    peer_ = ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
  }

  void Start() { ReadHeader(); }

  void Close() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  void ReadHeader() {
    asio::async_read(socket_, asio::buffer(header_),
                     [self = shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(error_code ec) {
    if (ec) return OnSocketError(ec, "header");
    uint32_t len = 0;
    try {
      len = framing::DecodeFrameHeader(header_.data());
    } catch (const framing::FramingError& e) {
      spdlog::warn("device server: client {}: {}; closing connection", peer_, e.what());
      return Close();
    }
    payload_.assign(len, '\0');
    asio::async_read(socket_, asio::buffer(payload_),
                     [self = shared_from_this()](error_code e, size_t) { self->OnPayload(e); });
  }

  void OnPayload(error_code ec) {
    if (ec) return OnSocketError(ec, "payload");
    bool close_after = false;
    try {
      v1::DeviceRequest req;
      v1::DeviceResponse resp;
      try {
        framing::ParseFramePayload(payload_, req);
        resp = Execute(engine_, req);
      } catch (const framing::FramingError& e) {
        // The frame was whole but is not a request: say so, then hang up.
        spdlog::warn("device server: client {}: {}; closing connection", peer_, e.what());
        resp.set_status(v1::DEVICE_BAD_REQUEST);
        resp.set_message(e.what());
        close_after = true;
      }
      out_ = framing::EncodeFrame(resp);
    } catch (const std::exception& e) {
      spdlog::error("device server: client {}: {}; closing connection", peer_, e.what());
      return Close();
    }
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), close_after](error_code e, size_t) {
                        if (e) return self->OnSocketError(e, "response");
                        if (close_after) return self->Close();
                        self->ReadHeader();
                      });
  }

  void OnSocketError(error_code ec, const char* what) {
    if (ec == asio::error::eof) {
      spdlog::debug("device server: client {} disconnected", peer_);
    } else if (ec != asio::error::operation_aborted) {
      spdlog::warn("device server: client {}: {} failed: {}; closing connection", peer_, what,
                   ec.message());
    }
    Close();
  }

  tcp::socket socket_;
  firmware::CommandProcessor& engine_;
  std::string peer_;
  std::array<uint8_t, framing::kHeaderBytes> header_{};
  std::string payload_;
  std::string out_;
};

}  // namespace

struct DeviceServer::Impl {
  Impl(firmware::MemoryPort& memory, uint16_t tcp_port, const firmware::EngineInfo& info,
       const std::string& bind_address)
      : engine(memory, info),
        acceptor(io, tcp::endpoint(asio::ip::make_address(bind_address), tcp_port)),
        port(acceptor.local_endpoint().port()),
        address(bind_address) {}

  void Accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        spdlog::warn("device server: accept failed: {}", ec.message());
      } else {
        auto session = std::make_shared<Session>(std::move(socket), engine);
        std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
        sessions.push_back(session);
        session->Start();
      }
      Accept();
    });
  }

  // On the io thread (or with no thread running): stop accepting, hang up on everyone.
  void CloseAll() {
    error_code ignored;
    acceptor.close(ignored);
    for (auto& w : sessions) {
      if (auto s = w.lock()) s->Close();
    }
    sessions.clear();
  }

  firmware::CommandProcessor engine;
  asio::io_context io;
  tcp::acceptor acceptor;
  const uint16_t port;
  const std::string address;
  std::vector<std::weak_ptr<Session>> sessions;  // io thread only
  std::mutex mu;                                 // guards started / stopped
  bool started = false;
  bool stopped = false;
  std::thread thread;
};

DeviceServer::DeviceServer(firmware::MemoryPort& memory, uint16_t tcp_port,
                           const firmware::EngineInfo& info, const std::string& bind_address)
    : impl_(std::make_unique<Impl>(memory, tcp_port, info, bind_address)) {}

DeviceServer::~DeviceServer() { Stop(); }

uint16_t DeviceServer::port() const { return impl_->port; }

void DeviceServer::Start() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->started || impl_->stopped) return;
  impl_->started = true;
  impl_->Accept();
  impl_->thread = std::thread([impl = impl_.get()] {
    try {
      impl->io.run();
    } catch (const std::exception& e) {
      spdlog::error("device server: stopped by an exception: {}", e.what());
    }
  });
  spdlog::info("device server: listening on {}:{}", impl_->address, impl_->port);
}

void DeviceServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (!impl_->started) {
    impl_->CloseAll();
    return;
  }
  // Closing everything leaves the io_context without work, so run() returns.
  asio::post(impl_->io, [impl = impl_.get()] { impl->CloseAll(); });
  impl_->thread.join();
}

}  // namespace dmahil::device_host
