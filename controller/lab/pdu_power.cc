#include "controller/lab/pdu_power.h"

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <optional>

#include "controller/lab/lab_error.h"

namespace dmahil::lab {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

std::string PercentEncode(std::string_view s) {
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// The body for a message: trimmed, one line, at most 200 characters.
std::string Excerpt(std::string_view body) {
  std::string out;
  for (const char c : body.substr(0, 200)) out += (c == '\n' || c == '\r') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (body.size() > 200) out += "...";
  return out;
}

}  // namespace

PduPowerSwitch::PduPowerSwitch(const v1::PduPower& config, uint32_t timeout_ms)
    : config_(config), timeout_ms_(timeout_ms) {
  const std::string& url = config_.url();
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    throw LabError(fmt::format("{}: the URL must start with http://", Describe()));
  }
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    prefix_ = std::string(rest.substr(slash));
    while (!prefix_.empty() && prefix_.back() == '/') prefix_.pop_back();
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      throw LabError(fmt::format("{}: bad IPv6 address in the URL", Describe()));
    }
    host_ = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw LabError(fmt::format("{}: bad URL", Describe()));
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    host_ = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host_.empty()) throw LabError(fmt::format("{}: no host in the URL", Describe()));
  if (port.empty()) {
    port_ = "80";
  } else {
    unsigned long value = 0;
    bool ok = port.size() <= 5;
    for (const char c : port) ok = ok && std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (ok) value = std::stoul(std::string(port));
    if (!ok || value == 0 || value > 65535) {
      throw LabError(fmt::format("{}: bad port \"{}\" in the URL", Describe(), port));
    }
    port_ = std::string(port);
  }
  if (config_.hostname().empty()) {
    throw LabError(fmt::format("{}: no PDU hostname", Describe()));
  }
}

std::string PduPowerSwitch::Describe() const {
  return fmt::format("pdudaemon {} pdu {} port {}", config_.url(), config_.hostname(),
                     config_.port());
}

std::string PduPowerSwitch::Target(std::string_view command) const {
  std::string target = fmt::format("{}/power/control/{}?hostname={}&port={}", prefix_, command,
                                   PercentEncode(config_.hostname()), config_.port());
  if (command == "reboot" && config_.delay_s() > 0) {
    target += fmt::format("&delay={}", config_.delay_s());
  }
  return target;
}

void PduPowerSwitch::On() { Request("on", timeout_ms_); }
void PduPowerSwitch::Off() { Request("off", timeout_ms_); }
void PduPowerSwitch::Cycle() {
  // pdudaemon's default off time is 5 s when no delay is given.
  const uint32_t off_s = config_.delay_s() > 0 ? config_.delay_s() : 5;
  Request("reboot", timeout_ms_ + off_s * 1000);
}
void PduPowerSwitch::Reset() { Cycle(); }

void PduPowerSwitch::Request(std::string_view command, uint32_t timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string target = Target(command);
  auto fail = [&](const std::string& what) {
    return LabError(fmt::format("{}: {}: {}", Describe(), command, what));
  };

  asio::io_context io;
  tcp::resolver resolver(io);
  beast::tcp_stream stream(io);
  // Runs the pending operation until it completes or `deadline` passes; throws on either
  // a timeout or an error.
  auto await = [&](const std::optional<error_code>& ec, const std::string& what) {
    io.restart();
    io.run_until(deadline);
    if (!ec) {
      resolver.cancel();
      stream.close();
      io.restart();
      io.run();
      throw fail(fmt::format("{} timed out after {} ms", what, timeout_ms));
    }
    if (*ec) throw fail(fmt::format("{}: {}", what, ec->message()));
  };

  std::optional<error_code> ec;
  tcp::resolver::results_type endpoints;
  error_code parse_ec;
  const asio::ip::address addr = asio::ip::make_address(host_, parse_ec);
  if (!parse_ec) {  // an IP address: no lookup (getaddrinfo cannot be interrupted)
    endpoints = tcp::resolver::results_type::create(
        tcp::endpoint(addr, static_cast<uint16_t>(std::stoul(port_))), host_, port_);
  } else {
    resolver.async_resolve(host_, port_, [&](const error_code& e, tcp::resolver::results_type r) {
      ec = e;
      endpoints = std::move(r);
    });
    await(ec, fmt::format("resolving {}", host_));
  }

  ec.reset();
  stream.async_connect(endpoints, [&](const error_code& e, const tcp::endpoint&) { ec = e; });
  await(ec, fmt::format("connecting to {}:{}", host_, port_));

  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host_);
  req.set(http::field::user_agent, "dmahil");
  req.set(http::field::connection, "close");
  ec.reset();
  http::async_write(stream, req, [&](const error_code& e, size_t) { ec = e; });
  await(ec, fmt::format("sending GET {}", target));

  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  ec.reset();
  http::async_read(stream, buffer, res, [&](const error_code& e, size_t) { ec = e; });
  await(ec, fmt::format("waiting for the response to GET {}", target));

  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (res.result() != http::status::ok || res.body().rfind("OK", 0) != 0) {
    throw fail(fmt::format("GET {}: HTTP {} {}: \"{}\"", target, res.result_int(),
                           std::string(res.reason()), Excerpt(res.body())));
  }
}

void ValidatePduPower(const v1::PduPower& pdu, const std::string& path, Problems& problems,
                      Claims& claims) {
  if (pdu.url().rfind("http://", 0) != 0 && pdu.url().rfind("https://", 0) != 0)
    problems.Add(path + ".url", "{}.url \"{}\" must be pdudaemon's http:// or https:// listener",
                 path, pdu.url());
  if (pdu.hostname().empty())
    problems.Add(path + ".hostname",
                 "{}.hostname is empty; give the PDU's name in pdudaemon's config", path);
  else
    claims.Claim(problems, "PDU outlet",
                 fmt::format("{} {} port {}", pdu.url(), pdu.hostname(), pdu.port()),
                 path + ".port");
}

}  // namespace dmahil::lab
