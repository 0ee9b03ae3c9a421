// Host-test helpers for the transport: a "fake vchan" is a socketpair whose inner end is
// an FdChannel handed to the code under test and whose outer end the test drives with
// blocking reads/writes.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "agent/transport/fd_channel.h"

namespace dmahil::agent::transport::testing {

/// `n` bytes of a position-dependent pattern (seed distinguishes streams).
inline std::vector<std::byte> PatternBytes(std::size_t n, std::uint32_t seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    v[i] = static_cast<std::byte>(x >> 24);
  }
  return v;
}

/// Writes all of `data` to the (non-blocking) fd, waiting with poll(2). Throws on error.
inline void WriteAllFd(int fd, const std::vector<std::byte>& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
    } else {
      throw std::runtime_error("test send failed: " + std::to_string(errno));
    }
  }
}

/// Reads from the (non-blocking) fd until end of stream or `limit` bytes.
inline std::vector<std::byte> ReadToEof(int fd, std::size_t limit = SIZE_MAX) {
  std::vector<std::byte> out;
  std::byte buf[16384];
  while (out.size() < limit) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      out.insert(out.end(), buf, buf + n);
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 10000) == 0) throw std::runtime_error("test read: 10 s without data");
    } else {
      break;  // ECONNRESET and the like: end
    }
  }
  return out;
}

}  // namespace dmahil::agent::transport::testing
