#include "agent/transport/stop_signal.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "agent/transport/byte_channel.h"

namespace dmahil::agent::transport {

StopSignal::StopSignal() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd_ < 0) throw TransportError(std::string("eventfd for a stop signal: ") + strerror(errno));
}

StopSignal::~StopSignal() { close(fd_); }

void StopSignal::Set() noexcept {
  const uint64_t one = 1;
  // Only fails if the counter would overflow (not after 2^64-2 calls) or fd_ is bad.
  [[maybe_unused]] ssize_t n = write(fd_, &one, sizeof one);
}

bool StopSignal::IsSet() const noexcept {
  pollfd p{fd_, POLLIN, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace dmahil::agent::transport
