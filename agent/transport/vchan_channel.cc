#include "agent/transport/vchan_channel.h"

#include <poll.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

extern "C" {
#include <libxenvchan.h>
}

namespace dmahil::agent::transport {
namespace {

std::string ErrnoText(int err) { return err != 0 ? strerror(err) : "no errno"; }

// libxenvchan_{server,client}_init malloc the control block and never set `blocking`
// (tools/libs/vchan/init.c): set it, so read/write return 0 instead of waiting.
void MakeNonBlocking(libxenvchan* ctrl) { ctrl->blocking = 0; }

}  // namespace

VchanChannel::VchanChannel(libxenvchan* ctrl, std::string description)
    : ctrl_(ctrl), description_(std::move(description)) {}

std::unique_ptr<VchanChannel> VchanChannel::Listen(int peer_domid, const std::string& xs_path,
                                                   std::size_t ring_bytes) {
  errno = 0;
  libxenvchan* ctrl =
      libxenvchan_server_init(nullptr, peer_domid, xs_path.c_str(), ring_bytes, ring_bytes);
  if (ctrl == nullptr) {
    throw TransportError("libxenvchan_server_init(peer domain " + std::to_string(peer_domid) +
                         ", xenstore path '" + xs_path + "', rings " + std::to_string(ring_bytes) +
                         " bytes) failed: " + ErrnoText(errno) +
                         " (needs /dev/xen/gntalloc, /dev/xen/evtchn and xenstore)");
  }
  MakeNonBlocking(ctrl);
  return std::unique_ptr<VchanChannel>(new VchanChannel(
      ctrl, "vchan server '" + xs_path + "' (peer domain " + std::to_string(peer_domid) + ")"));
}

std::unique_ptr<VchanChannel> VchanChannel::Connect(int domid, const std::string& xs_path) {
  errno = 0;
  libxenvchan* ctrl = libxenvchan_client_init(nullptr, domid, xs_path.c_str());
  const std::string description =
      "vchan client of domain " + std::to_string(domid) + " at '" + xs_path + "'";
  if (ctrl == nullptr) {
    throw TransportError("libxenvchan_client_init for " + description +
                         " failed: " + ErrnoText(errno) +
                         " (is the guest agent serving? needs /dev/xen/gntdev, "
                         "/dev/xen/evtchn and xenstored)");
  }
  MakeNonBlocking(ctrl);
  std::unique_ptr<VchanChannel> channel(new VchanChannel(ctrl, description));
  // A server that is closing leaves srv_live = 0 before it removes its xenstore nodes.
  if (libxenvchan_is_open(ctrl) != 1)
    throw TransportError(description + ": the server is closed (stale xenstore nodes)");
  return channel;
}

std::unique_ptr<VchanChannel> VchanChannel::ConnectWithRetry(
    int domid, const std::string& xs_path, std::chrono::milliseconds timeout,
    const StopSignal* stop, std::chrono::milliseconds retry_interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    try {
      return Connect(domid, xs_path);
    } catch (const TransportError& e) {
      if (std::chrono::steady_clock::now() + retry_interval > deadline) {
        throw TransportError(std::string(e.what()) + " (gave up after " +
                             std::to_string(timeout.count()) + " ms)");
      }
    }
    pollfd p{stop != nullptr ? stop->Fd() : -1, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(retry_interval.count())) > 0) return nullptr;
  }
}

bool VchanChannel::WaitForClient(const StopSignal* stop) {
  if (ctrl_ == nullptr) throw TransportError(description_ + ": WaitForClient after Close");
  // is_open: 2 = no client yet, 1 = connected, 0 = the client came and left already.
  // The client sets cli_live = 1 and notifies the event channel (init.c client_init).
  while (libxenvchan_is_open(ctrl_) == 2) {
    pollfd fds[2] = {{libxenvchan_fd_for_select(ctrl_), POLLIN, 0},
                     {stop != nullptr ? stop->Fd() : -1, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      throw TransportError(description_ + ": poll while waiting for a client: " + ErrnoText(errno));
    }
    if (fds[1].revents != 0) return false;
    if (fds[0].revents != 0) OnPollEvents(fds[0].revents);
  }
  return true;
}

IoResult VchanChannel::ReadSome(std::span<std::byte> buf) {
  if (ctrl_ == nullptr) return {0, true};
  const std::size_t n = std::min<std::size_t>(buf.size(), INT_MAX);
  const int got = libxenvchan_read(ctrl_, buf.data(), n);
  if (got > 0) return {static_cast<std::size_t>(got), false};
  if (got == 0) return {0, false};
  // -1: the peer closed and no data is left, or notifying the peer failed (io.c do_recv).
  if (libxenvchan_is_open(ctrl_) == 0) return {0, true};
  throw TransportError(description_ + ": libxenvchan_read failed: " + ErrnoText(errno));
}

IoResult VchanChannel::WriteSome(std::span<const std::byte> data) {
  if (ctrl_ == nullptr) return {0, true};
  const std::size_t n = std::min<std::size_t>(data.size(), INT_MAX);
  const int put = libxenvchan_write(ctrl_, data.data(), n);
  if (put >= 0) return {static_cast<std::size_t>(put), false};
  if (libxenvchan_is_open(ctrl_) == 0) return {0, true};
  throw TransportError(description_ + ": libxenvchan_write failed: " + ErrnoText(errno));
}

int VchanChannel::PollFd() const {
  return ctrl_ != nullptr ? libxenvchan_fd_for_select(ctrl_) : -1;
}

short VchanChannel::PollEvents(bool, bool) const {
  // One event channel signals every state change (data, space, close); the
  // notifications wanted were armed by the read/write that returned short (io.c
  // request_notify).
  return POLLIN;
}

void VchanChannel::OnPollEvents(short revents) {
  if (ctrl_ == nullptr || (revents & POLLIN) == 0) return;
  if (libxenvchan_wait(ctrl_) != 0)
    throw TransportError(description_ + ": libxenvchan_wait failed: " + ErrnoText(errno));
}

void VchanChannel::Close() noexcept {
  if (ctrl_ == nullptr) return;
  libxenvchan_close(ctrl_);
  ctrl_ = nullptr;
}

}  // namespace dmahil::agent::transport
