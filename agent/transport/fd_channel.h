// FdChannel: a ByteChannel over a connected stream socket (TCP, or AF_UNIX socketpair).
#pragma once

#include <utility>

#include "agent/transport/byte_channel.h"

namespace dmahil::agent::transport {

class FdChannel final : public ByteChannel {
 public:
  /// Takes ownership of `fd` (a connected SOCK_STREAM socket) and makes it non-blocking.
  /// Throws TransportError if fd < 0 or fcntl(2) fails.
  explicit FdChannel(int fd);
  ~FdChannel() override { Close(); }
  FdChannel(const FdChannel&) = delete;
  FdChannel& operator=(const FdChannel&) = delete;

  /// recv(2); end of stream, ECONNRESET and ETIMEDOUT count as closed.
  IoResult ReadSome(std::span<std::byte> buf) override;
  /// send(2) with MSG_NOSIGNAL; EPIPE and ECONNRESET count as closed.
  IoResult WriteSome(std::span<const std::byte> data) override;
  int PollFd() const override { return fd_; }
  short PollEvents(bool want_read, bool want_write) const override;
  void OnPollEvents(short) override {}
  void Close() noexcept override;

 private:
  int fd_;
};

/// Sets O_NONBLOCK on `fd`. Throws TransportError naming `what` if fcntl(2) fails.
void SetNonBlocking(int fd, const char* what);

/// A connected AF_UNIX SOCK_STREAM socketpair, both ends non-blocking and close-on-exec.
/// Throws TransportError if socketpair(2) fails.
std::pair<int, int> MakeSocketPair();

}  // namespace dmahil::agent::transport
