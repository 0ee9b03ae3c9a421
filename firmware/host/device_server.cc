#include "firmware/host/device_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/framing.h"
#include "dmahil/v1/device.pb.h"
#include "firmware/host/codec.h"

namespace dmahil::device_host {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

const DeviceServerOptions& Checked(const DeviceServerOptions& o) {
  if (o.max_connections == 0) throw std::invalid_argument("device server: max_connections is 0");
  if (o.frame_timeout.count() <= 0) {
    throw std::invalid_argument(fmt::format("device server: frame_timeout of {} ms is not above 0",
                                            o.frame_timeout.count()));
  }
  if (o.idle_timeout.count() < 0) {
    throw std::invalid_argument(
        fmt::format("device server: idle_timeout of {} ms is negative", o.idle_timeout.count()));
  }
  return o;
}

// What the sessions of one server share. Outlives the io_context (declared before it), so
// that sessions destroyed with it can still use it.
struct ServerState {
  ServerState(firmware::MemoryPort& memory, const firmware::EngineInfo& info,
              const DeviceServerOptions& o)
      : engine(memory, info), options(Checked(o)) {}

  firmware::CommandProcessor engine;
  const DeviceServerOptions options;
  std::atomic<size_t> connections{0};  // sessions holding a slot (changed on the io thread)
  std::atomic<size_t> buffered{0};     // heap bytes of the sessions' payload and response buffers
};

std::string StatusFrame(const std::string& message) {
  v1::DeviceResponse resp;
  resp.set_status(v1::DEVICE_BAD_REQUEST);
  resp.set_message(message);
  return framing::EncodeFrame(resp);
}

// Writes a short final frame without waiting (best effort: nothing is sent if the socket
// cannot take it now). For connections that are about to be closed.
void SendFinalFrameNow(tcp::socket& socket, const std::string& message, const std::string& peer) {
  error_code ec;
  socket.non_blocking(true, ec);
  if (!ec) asio::write(socket, asio::buffer(StatusFrame(message)), ec);
  if (ec) spdlog::debug("device server: client {}: final frame not sent: {}", peer, ec.message());
}

std::string PeerOf(const tcp::socket& socket) {
  error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  return ec ? std::string("?") : peer.address().to_string() + ":" + std::to_string(peer.port());
}

// One client connection: read a frame, execute it, write the response, repeat. Holds a
// slot (ServerState::connections) from construction until Close().
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerState& state)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), state_(state) {
    peer_ = PeerOf(socket_);
    state_.connections.fetch_add(1);
  }

  ~Session() {
    if (!closed_) state_.connections.fetch_sub(1);
    state_.buffered.fetch_sub(accounted_);
  }

  void Start() { ReadHeader(); }

  // Since when the connection has been waiting for the first byte of a frame, or nullopt
  // if it is inside a frame (or closed).
  std::optional<Clock::time_point> idle_since() const {
    if (closed_ || !idle_) return std::nullopt;
    return idle_since_;
  }

  // Closes an idle connection, telling the client why first (best effort).
  void Evict(const std::string& why) {
    spdlog::info("device server: client {}: {}", peer_, why);
    SendFinalFrameNow(socket_, why, peer_);
    Close();
  }

  // Hangs up and frees the slot. The buffers are freed with the session, once the
  // handlers of the aborted operations have run.
  void Close() {
    if (closed_) return;
    closed_ = true;
    state_.connections.fetch_sub(1);
    ++timer_gen_;
    timer_.cancel();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  // Between frames: waits for the first byte of a header, with no deadline.
  void ReadHeader() {
    header_got_ = 0;
    idle_ = true;
    idle_since_ = Clock::now();
    DisarmDeadline();
    ReadHeaderBytes();
  }

  void ReadHeaderBytes() {
    socket_.async_read_some(
        asio::buffer(header_.data() + header_got_, header_.size() - header_got_),
        [self = shared_from_this()](error_code ec, size_t n) { self->OnHeaderBytes(ec, n); });
  }

  void OnHeaderBytes(error_code ec, size_t n) {
    if (closed_ || finishing_) return;
    if (ec)
      return OnSocketError(ec, header_got_ == 0 ? "waiting for a request" : "reading a header");
    if (header_got_ == 0) {  // the first byte of a frame: its deadline starts
      idle_ = false;
      ArmDeadline();
    }
    header_got_ += n;
    if (header_got_ < header_.size()) return ReadHeaderBytes();
    OnHeader();
  }

  void OnHeader() {
    try {
      payload_len_ = framing::DecodeFrameHeader(header_.data());
    } catch (const framing::FramingError& e) {
      return Finish(fmt::format("request refused: {}; closing the connection", e.what()));
    }
    payload_got_ = 0;
    ReadPayload();
  }

  // Reads the payload in pieces of at most kReadChunkBytes into a buffer that grows with
  // the bytes received.
  void ReadPayload() {
    if (payload_got_ == payload_len_) return OnPayload();
    const size_t piece = std::min<size_t>(framing::kReadChunkBytes, payload_len_ - payload_got_);
    if (payload_.capacity() < payload_got_ + piece) {
      payload_.reserve(framing::NextPayloadCapacity(payload_got_, payload_len_));
      Account();
    }
    payload_.resize(payload_got_ + piece);  // within the capacity: no allocation
    socket_.async_read_some(asio::buffer(payload_.data() + payload_got_, piece),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              if (self->closed_ || self->finishing_) return;
                              if (ec) return self->OnSocketError(ec, "reading a payload");
                              self->payload_got_ += n;
                              self->ReadPayload();
                            });
  }

  void OnPayload() {
    v1::DeviceRequest req;
    try {
      framing::ParseFramePayload(std::string_view(payload_.data(), payload_got_), req);
    } catch (const framing::FramingError& e) {
      return Finish(fmt::format("request refused: {}; closing the connection", e.what()));
    }
    std::vector<char>().swap(payload_);  // no read is pending: the buffer can go
    Account();
    try {
      out_ = framing::EncodeFrame(Execute(state_.engine, req));
    } catch (const std::exception& e) {
      return Finish(
          fmt::format("device server error on the request with tag {}: {}; closing "
                      "the connection",
                      req.tag(), e.what()));
    }
    Account();
    WriteOut(/*then_close=*/false);
  }

  // Answers DEVICE_BAD_REQUEST, tag 0, with `message`, then closes the connection. A read
  // may still be pending (a deadline): its handler then does nothing.
  void Finish(const std::string& message) {
    spdlog::warn("device server: client {}: {}", peer_, message);
    finishing_ = true;
    out_ = StatusFrame(message);
    Account();
    WriteOut(/*then_close=*/true);
  }

  // Writes out_; the client must take it within frame_timeout.
  void WriteOut(bool then_close) {
    writing_ = true;
    ArmDeadline();
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), then_close](error_code ec, size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        if (ec) return self->OnSocketError(ec, "writing a response");
                        std::string().swap(self->out_);
                        self->Account();
                        if (then_close) return self->Close();
                        self->ReadHeader();
                      });
  }

  void ArmDeadline() {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(state_.options.frame_timeout);
    timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->timer_gen_ || self->closed_) return;
      self->OnDeadline();
    });
  }

  void DisarmDeadline() {
    ++timer_gen_;
    timer_.cancel();
  }

  void OnDeadline() {
    const auto ms = state_.options.frame_timeout.count();
    if (writing_) {  // the client does not read: nothing more can be said to it
      spdlog::warn(
          "device server: client {}: response not taken within {} ms; closing "
          "the connection",
          peer_, ms);
      return Close();
    }
    const std::string got = header_got_ < header_.size()
                                ? fmt::format("{} of {} header bytes", header_got_, header_.size())
                                : fmt::format("{} of {} payload bytes", payload_got_, payload_len_);
    Finish(
        fmt::format("request frame not complete {} ms after its first byte ({} received); "
                    "closing the connection",
                    ms, got));
  }

  void OnSocketError(error_code ec, const char* what) {
    if (ec == asio::error::eof) {
      spdlog::debug("device server: client {} disconnected ({})", peer_, what);
    } else if (ec != asio::error::operation_aborted) {
      spdlog::warn("device server: client {}: {} failed: {}; closing the connection", peer_, what,
                   ec.message());
    }
    Close();
  }

  // Brings ServerState::buffered up to date with this session's buffers.
  void Account() {
    const size_t now = payload_.capacity() + (out_.empty() ? 0 : out_.capacity());
    if (now >= accounted_) {
      state_.buffered.fetch_add(now - accounted_);
    } else {
      state_.buffered.fetch_sub(accounted_ - now);
    }
    accounted_ = now;
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  ServerState& state_;
  std::string peer_;
  std::array<uint8_t, framing::kHeaderBytes> header_{};
  size_t header_got_ = 0;
  std::vector<char> payload_;  // size: bytes received plus the piece being read
  uint32_t payload_len_ = 0;   // announced
  size_t payload_got_ = 0;     // received
  std::string out_;            // the response being written
  size_t accounted_ = 0;       // bytes of payload_ and out_ counted in state_.buffered
  uint64_t timer_gen_ = 0;     // a timer handler of an older generation does nothing
  bool idle_ = false;          // waiting for the first byte of a frame
  Clock::time_point idle_since_{};
  bool writing_ = false;
  bool finishing_ = false;  // the final frame is being written
  bool closed_ = false;
};

}  // namespace

struct DeviceServer::Impl {
  Impl(firmware::MemoryPort& memory, uint16_t tcp_port, const firmware::EngineInfo& info,
       const std::string& bind_address, const DeviceServerOptions& options)
      : state(memory, info, options),
        acceptor(io, tcp::endpoint(asio::ip::make_address(bind_address), tcp_port)),
        port(acceptor.local_endpoint().port()),
        address(bind_address) {}

  void Accept() {
    acceptor.async_accept([this](error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        spdlog::warn("device server: accept failed: {}", ec.message());
      } else {
        OnAccepted(std::move(socket));
      }
      Accept();
    });
  }

  void OnAccepted(tcp::socket socket) {
    std::erase_if(sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
    const size_t limit = state.options.max_connections;
    if (state.connections.load() >= limit) MakeRoom();
    const size_t now = state.connections.load();
    if (now >= limit) {
      const std::string peer = PeerOf(socket);
      const std::string why = fmt::format(
          "the device server has {} connection{} already and the limit is {}; closing this "
          "one, try again later",
          now, now == 1 ? "" : "s", limit);
      spdlog::warn("device server: client {}: {}", peer, why);
      SendFinalFrameNow(socket, why, peer);
      error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      return;
    }
    auto session = std::make_shared<Session>(std::move(socket), state);
    sessions.push_back(session);
    session->Start();
  }

  // The server is full: closes the connection idle longest, if idle for idle_timeout.
  void MakeRoom() {
    const Clock::time_point cutoff = Clock::now() - state.options.idle_timeout;
    std::shared_ptr<Session> oldest;
    Clock::time_point oldest_since{};
    for (auto& w : sessions) {
      auto s = w.lock();
      if (!s) continue;
      const auto since = s->idle_since();
      if (since && *since <= cutoff && (!oldest || *since < oldest_since)) {
        oldest = s;
        oldest_since = *since;
      }
    }
    if (!oldest) return;
    const auto idle_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - oldest_since);
    const size_t limit = state.options.max_connections;
    oldest->Evict(fmt::format(
        "closing this connection, idle for {} ms (the idle limit is {} ms), to make room for a "
        "new one: the device server is at its limit of {} connection{}",
        idle_ms.count(), state.options.idle_timeout.count(), limit, limit == 1 ? "" : "s"));
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

  ServerState state;  // before io: sessions destroyed with io still use it
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
                           const firmware::EngineInfo& info, const std::string& bind_address,
                           const DeviceServerOptions& options)
    : impl_(std::make_unique<Impl>(memory, tcp_port, info, bind_address, options)) {}

DeviceServer::~DeviceServer() { Stop(); }

uint16_t DeviceServer::port() const { return impl_->port; }

size_t DeviceServer::connections() const { return impl_->state.connections.load(); }

size_t DeviceServer::buffered_bytes() const { return impl_->state.buffered.load(); }

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
