#include "common/host_port.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace dmahil {
namespace {

/// Splits into host and port text; "" on success, else the problem.
std::string Split(const std::string& endpoint, std::string* host, std::string* port) {
  if (endpoint.empty()) return "is empty";
  if (endpoint.front() == '[') {
    const size_t close = endpoint.find(']');
    if (close == std::string::npos || close + 1 >= endpoint.size() || endpoint[close + 1] != ':')
      return "is not [ipv6]:port";
    *host = endpoint.substr(1, close - 1);
    *port = endpoint.substr(close + 2);
  } else {
    const size_t colon = endpoint.rfind(':');
    if (colon == std::string::npos) return "has no :port";
    *host = endpoint.substr(0, colon);
    *port = endpoint.substr(colon + 1);
    if (host->find(':') != std::string::npos) return "has an IPv6 host without [brackets]";
  }
  if (host->empty()) return "has no host";
  return "";
}

/// The port number of `text`, or 0 when it is not a decimal 1..65535.
uint16_t PortNumber(const std::string& text) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return 0;
  unsigned n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n <= 65535 ? static_cast<uint16_t>(n) : 0;
}

}  // namespace

std::string HostPortProblem(const std::string& endpoint) {
  std::string host;
  std::string port;
  if (std::string why = Split(endpoint, &host, &port); !why.empty()) return why;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return "has a port that is not a number";
  if (PortNumber(port) == 0) return "has a port outside 1..65535";
  return "";
}

HostPort ParseHostPort(const std::string& endpoint) {
  if (std::string why = HostPortProblem(endpoint); !why.empty())
    throw std::invalid_argument(fmt::format("{}: {}", endpoint, why));
  HostPort hp;
  std::string port;
  Split(endpoint, &hp.host, &port);
  hp.port = PortNumber(port);
  return hp;
}

}  // namespace dmahil
