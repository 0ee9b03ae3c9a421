#include "agent/transport/pump.h"

#include <poll.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace dmahil::agent::transport {
namespace {

// One direction: bytes read from src wait in buf[off, off + len) until dst takes them.
struct Direction {
  ByteChannel& src;
  ByteChannel& dst;
  std::vector<std::byte> buf;
  std::size_t off = 0;
  std::size_t len = 0;
  bool src_closed = false;
  bool dst_closed = false;
  std::uint64_t delivered = 0;

  bool WantsRead() const { return !src_closed && len == 0; }
  bool WantsWrite() const { return len > 0 && !dst_closed; }
  // The source ended and everything read from it was delivered (or can't be).
  bool Finished() const { return src_closed && (len == 0 || dst_closed); }

  // Makes all the progress possible without blocking; true if any byte moved or a close
  // was seen.
  bool Step() {
    bool progress = false;
    for (;;) {
      if (WantsRead()) {
        const IoResult r = src.ReadSome(buf);
        if (r.closed) {
          src_closed = true;
          return true;
        }
        if (r.bytes == 0) return progress;
        off = 0;
        len = r.bytes;
        progress = true;
      }
      if (!WantsWrite()) return progress;
      const IoResult w = dst.WriteSome(std::span<const std::byte>(buf).subspan(off, len));
      if (w.closed) {
        dst_closed = true;
        return true;
      }
      if (w.bytes == 0) return progress;
      off += w.bytes;
      len -= w.bytes;
      delivered += w.bytes;
      progress = true;
    }
  }
};

}  // namespace

PumpResult Pump(ByteChannel& a, ByteChannel& b, const PumpOptions& options) {
  if (options.buffer_bytes == 0) throw TransportError("Pump: buffer_bytes must be > 0");
  Direction ab{a, b, std::vector<std::byte>(options.buffer_bytes)};
  Direction ba{b, a, std::vector<std::byte>(options.buffer_bytes)};
  PumpResult result;
  auto finish = [&](PumpResult::End end) {
    result.end = end;
    result.a_to_b_bytes = ab.delivered;
    result.b_to_a_bytes = ba.delivered;
    return result;
  };

  for (;;) {
    // Progress until neither direction can move without waiting: the readiness contract
    // (byte_channel.h) then guarantees an event for whatever we wait on.
    bool progress = true;
    while (progress) {
      progress = ab.Step();
      progress = ba.Step() || progress;
      if (ab.dst_closed) return finish(PumpResult::End::kBClosed);
      if (ba.dst_closed) return finish(PumpResult::End::kAClosed);
      if (ab.Finished()) return finish(PumpResult::End::kAClosed);
      if (ba.Finished()) return finish(PumpResult::End::kBClosed);
    }
    if (options.stop != nullptr && options.stop->IsSet()) return finish(PumpResult::End::kStopped);

    // A channel we want nothing from is left out (fd -1): poll(2) reports POLLHUP even
    // for events == 0, which would spin this loop until the other side drains.
    const short a_events = a.PollEvents(ab.WantsRead(), ba.WantsWrite());
    const short b_events = b.PollEvents(ba.WantsRead(), ab.WantsWrite());
    pollfd fds[3] = {
        {a_events != 0 ? a.PollFd() : -1, a_events, 0},
        {b_events != 0 ? b.PollFd() : -1, b_events, 0},
        {options.stop != nullptr ? options.stop->Fd() : -1, POLLIN, 0},
    };
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      throw TransportError(std::string("poll in the transport pump: ") + strerror(errno));
    }
    if ((fds[0].revents | fds[1].revents) & POLLNVAL)
      throw TransportError("poll in the transport pump: a channel fd is not open (POLLNVAL)");
    if (fds[2].revents != 0) return finish(PumpResult::End::kStopped);
    if (fds[0].revents != 0) a.OnPollEvents(fds[0].revents);
    if (fds[1].revents != 0) b.OnPollEvents(fds[1].revents);
  }
}

}  // namespace dmahil::agent::transport
