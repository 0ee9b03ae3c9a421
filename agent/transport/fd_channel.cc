#include "agent/transport/fd_channel.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace dmahil::agent::transport {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what, int err) {
  throw TransportError(what + ": " + strerror(err));
}

}  // namespace

void SetNonBlocking(int fd, const char* what) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    ThrowErrno(std::string("fcntl(O_NONBLOCK) on ") + what, errno);
}

std::pair<int, int> MakeSocketPair() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
    ThrowErrno("socketpair(AF_UNIX, SOCK_STREAM)", errno);
  return {sv[0], sv[1]};
}

FdChannel::FdChannel(int fd) : fd_(fd) {
  if (fd_ < 0) throw TransportError("FdChannel: invalid fd " + std::to_string(fd));
  SetNonBlocking(fd_, "a relayed socket");
}

IoResult FdChannel::ReadSome(std::span<std::byte> buf) {
  for (;;) {
    const ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    if (n > 0) return {static_cast<std::size_t>(n), false};
    if (n == 0) return {0, true};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, false};
    if (errno == ECONNRESET || errno == ETIMEDOUT) return {0, true};
    ThrowErrno("recv on fd " + std::to_string(fd_), errno);
  }
}

IoResult FdChannel::WriteSome(std::span<const std::byte> data) {
  for (;;) {
    const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) return {static_cast<std::size_t>(n), false};
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return {0, false};
    if (errno == EPIPE || errno == ECONNRESET) return {0, true};
    ThrowErrno("send on fd " + std::to_string(fd_), errno);
  }
}

short FdChannel::PollEvents(bool want_read, bool want_write) const {
  return static_cast<short>((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0));
}

void FdChannel::Close() noexcept {
  if (fd_ < 0) return;
  close(fd_);
  fd_ = -1;
}

}  // namespace dmahil::agent::transport
