#include "controller/device/tcp_device_client.h"

#include <fmt/format.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

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

void TcpDeviceClient::Await(Clock::time_point deadline, const char* what, const error_code& ec) {
  io_.restart();
  io_.run_until(deadline);
  if (!io_.stopped()) {  // the op is still pending: abort it and let its handler run
    Disconnect();
    io_.restart();
    io_.run();
    Fail(fmt::format("{} timed out after {} ms", what, timeout_.count()));
  }
  if (!ec) return;
  Disconnect();
  if (ec == asio::error::eof) Fail(fmt::format("the device closed the connection while {}", what));
  Fail(fmt::format("{}: {}", what, ec.message()));
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
  Await(deadline, "sending the request", ec);

  std::array<uint8_t, framing::kHeaderBytes> header{};
  ec = asio::error::would_block;
  asio::async_read(socket_, asio::buffer(header), [&](const error_code& e, size_t) { ec = e; });
  Await(deadline, "waiting for the response", ec);

  v1::DeviceResponse resp;
  try {
    std::string payload(framing::DecodeFrameHeader(header.data()), '\0');
    ec = asio::error::would_block;
    asio::async_read(socket_, asio::buffer(payload), [&](const error_code& e, size_t) { ec = e; });
    Await(deadline, "reading the response", ec);
    framing::ParseFramePayload(payload, resp);
  } catch (const framing::FramingError& e) {
    Disconnect();
    Fail(fmt::format("bad response: {}", e.what()));
  }
  if (resp.tag() != req.tag()) {
    Disconnect();
    Fail(fmt::format("response tag {} does not match request tag {}", resp.tag(), req.tag()));
  }
  return resp;
}

}  // namespace dmahil::controller
