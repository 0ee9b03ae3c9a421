#include "controller/device/tcp_device_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <string_view>
#include <vector>

#include "common/framing.h"

namespace dmahil::controller {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

TcpDeviceClient::TcpDeviceClient(std::string host, uint16_t port, uint32_t timeout_ms)
    : host_(std::move(host)), port_(port), timeout_(timeout_ms), resolver_(io_), socket_(io_) {
  Connect();
}

TcpDeviceClient::~TcpDeviceClient() { Disconnect(); }

std::string TcpDeviceClient::endpoint() const { return fmt::format("{}:{}", host_, port_); }

void TcpDeviceClient::Fail(const std::string& what) const {
  throw DeviceError(fmt::format("device {}: {}", endpoint(), what));
}

void TcpDeviceClient::Disconnect() {
  resolver_.cancel();
  error_code ignored;
  socket_.close(ignored);
}

void TcpDeviceClient::Await(Clock::time_point deadline, const std::string& what,
                            const error_code& ec, uint64_t request_tag) {
  io_.restart();
  io_.run_until(deadline);
  if (!io_.stopped()) {  // the op is still pending: abort it and let its handler run
    Disconnect();
    io_.restart();
    io_.run();
    Fail(fmt::format("{} timed out after {} ms", what, timeout_.count()));
  }
  if (!ec) return;
  const std::string refusal = request_tag != 0 ? PendingRefusal(request_tag) : std::string();
  Disconnect();
  if (!refusal.empty()) Fail(refusal);
  if (ec == asio::error::eof) Fail(fmt::format("the device closed the connection while {}", what));
  Fail(fmt::format("{}: {}", what, ec.message()));
}

std::string TcpDeviceClient::RefusalMessage(const v1::DeviceResponse& resp, uint64_t request_tag) {
  return fmt::format("the device server refused request tag {} and closed the connection: {}",
                     request_tag, resp.message().empty() ? "(no message)" : resp.message());
}

std::string TcpDeviceClient::PendingRefusal(uint64_t request_tag) {
  // A refusal is one small frame (a message of a line); anything longer is not one.
  constexpr size_t kMaxRefusalBytes = 4096;
  error_code ec;
  const size_t available = socket_.available(ec);
  if (ec || available < framing::kHeaderBytes || available > kMaxRefusalBytes) return {};
  std::string bytes(available, '\0');
  socket_.non_blocking(true, ec);
  if (ec) return {};
  const size_t got = socket_.read_some(asio::buffer(bytes), ec);
  if (ec) return {};
  bytes.resize(got);
  v1::DeviceResponse resp;
  try {
    if (framing::DecodeFrame(bytes, resp) == 0) return {};
  } catch (const framing::FramingError&) {
    return {};
  }
  if (resp.tag() != 0 || resp.status() != v1::DEVICE_BAD_REQUEST) return {};
  return RefusalMessage(resp, request_tag);
}

void TcpDeviceClient::Connect() {
  const Clock::time_point deadline = Clock::now() + timeout_;
  error_code ec = asio::error::would_block;
  tcp::resolver::results_type endpoints;
  error_code parse_ec;
  const asio::ip::address addr = asio::ip::make_address(host_, parse_ec);
  if (!parse_ec) {
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(addr, port_), host_,
                                                    std::to_string(port_));
  } else {
    resolver_.async_resolve(host_, std::to_string(port_),
                            [&](const error_code& e, tcp::resolver::results_type r) {
                              ec = e;
                              endpoints = std::move(r);
                            });
    Await(deadline, "resolving the host", ec);
  }
  ec = asio::error::would_block;
  asio::async_connect(socket_, endpoints,
                      [&](const error_code& e, const tcp::endpoint&) { ec = e; });
  Await(deadline, "connecting", ec);
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
}

v1::DeviceResponse TcpDeviceClient::Transact(const v1::DeviceRequest& request) {
  auto [req, frame] = FrameRequest(request, next_tag_, "device " + endpoint());
  if (!socket_.is_open()) Connect();
  const Clock::time_point deadline = Clock::now() + timeout_;

  error_code ec = asio::error::would_block;
  asio::async_write(socket_, asio::buffer(frame), [&](const error_code& e, size_t) { ec = e; });
  Await(deadline, "sending the request", ec, req.tag());

  std::array<uint8_t, framing::kHeaderBytes> header{};
  ec = asio::error::would_block;
  asio::async_read(socket_, asio::buffer(header), [&](const error_code& e, size_t) { ec = e; });
  Await(deadline, "waiting for the response", ec);

  v1::DeviceResponse resp;
  try {
    const uint32_t length = framing::DecodeFrameHeader(header.data());
    // As framing::ReadFrame does, but within the deadline: reads of at most
    // kReadChunkBytes into a buffer that grows with the bytes received, only once they
    // fill it (NextPayloadCapacity), never with the announced length alone.
    std::vector<char> payload;
    size_t received = 0;
    while (received < length) {
      if (received == payload.size()) {
        const size_t capacity = framing::NextPayloadCapacity(received, length);
        payload.reserve(capacity);  // exactly this (resize alone may double past length)
        payload.resize(capacity);
      }
      const size_t piece = std::min<size_t>(framing::kReadChunkBytes, payload.size() - received);
      size_t got = 0;
      ec = asio::error::would_block;
      socket_.async_read_some(asio::buffer(payload.data() + received, piece),
                              [&](const error_code& e, size_t n) {
                                ec = e;
                                got = n;
                              });
      Await(deadline,
            fmt::format("reading the response ({} of {} payload bytes received)", received, length),
            ec);
      received += got;
    }
    framing::ParseFramePayload(std::string_view(payload.data(), received), resp);
  } catch (const framing::FramingError& e) {
    Disconnect();
    Fail(fmt::format("bad response: {}", e.what()));
  }
  if (resp.tag() != req.tag()) {
    Disconnect();
    // A refusal (docs/device-protocol.md §1.1): the server closes the connection after it,
    // so the next Transact reconnects.
    if (resp.tag() == 0 && resp.status() == v1::DEVICE_BAD_REQUEST) {
      Fail(RefusalMessage(resp, req.tag()));
    }
    Fail(fmt::format("response tag {} does not match request tag {}", resp.tag(), req.tag()));
  }
  return resp;
}

}  // namespace dmahil::controller
