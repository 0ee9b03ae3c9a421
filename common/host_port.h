// "host:port" and "[ipv6]:port" endpoints: the one parser for agent targets, TCP engines
// and the virtual board's ready line.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace dmahil {

/// A parsed endpoint: host without brackets, port 1..65535.
struct HostPort {
  std::string host;
  uint16_t port = 0;
};

/// Why `endpoint` is not "host:port" or "[ipv6]:port" with a decimal port 1..65535, e.g.
/// "has no :port" or "has an IPv6 host without [brackets]"; "" if it is one.
std::string HostPortProblem(const std::string& endpoint);

/// Parses `endpoint`. Throws std::invalid_argument "<endpoint>: <HostPortProblem>" when
/// it is not one.
HostPort ParseHostPort(const std::string& endpoint);

}  // namespace dmahil
