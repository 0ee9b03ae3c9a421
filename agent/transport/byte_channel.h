// ByteChannel: the narrow byte-stream interface the transport's pump moves data through.
//
// Two implementations: FdChannel (a non-blocking stream socket: the TCP connection in dom0,
// a socketpair end handed to gRPC in the guest, and the fake "vchan" of the host tests)
// and VchanChannel (a libxenvchan stream between dom0 and the guest).
//
// Why non-blocking "read some / write some" rather than a blocking "write all": one thread
// pumps both directions (libxenvchan has one event channel per vchan, and two threads
// waiting on it would steal each other's events, see tools/libs/vchan/io.c
// libxenvchan_wait). With a blocking write, a pump whose two destinations are both full
// would deadlock; with WriteSome it keeps reading the other direction while it waits.
//
// Readiness contract (the pump relies on it): when ReadSome returns 0 bytes without
// `closed`, or WriteSome writes less than asked, the channel has armed a wake-up, so
// poll(2) on PollFd() with PollEvents() reports an event once progress is possible again.
// After poll(2) returns events for the fd, the pump calls OnPollEvents() before retrying.
#pragma once

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>

namespace dmahil::agent::transport {

/// A transport failure that is not a normal close: message names the call and the errno
/// text (or the libxenvchan/xenstore call and the path) that failed.
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Outcome of one non-blocking read or write. bytes: bytes moved (0 = would block).
/// closed: the peer has gone (read: end of stream and no data left; write: the peer can
/// no longer receive). closed implies bytes == 0.
struct IoResult {
  std::size_t bytes = 0;
  bool closed = false;
};

class ByteChannel {
 public:
  virtual ~ByteChannel() = default;

  /// Reads up to buf.size() bytes without blocking. Throws TransportError on a failure
  /// that is not a close.
  virtual IoResult ReadSome(std::span<std::byte> buf) = 0;

  /// Writes up to data.size() bytes without blocking. Throws TransportError on a failure
  /// that is not a close.
  virtual IoResult WriteSome(std::span<const std::byte> data) = 0;

  /// The fd to poll(2) for this channel's readiness; stays valid until Close().
  virtual int PollFd() const = 0;

  /// The poll(2) events to request on PollFd() when the pump wants to read (want_read) or
  /// is waiting to write (want_write).
  virtual short PollEvents(bool want_read, bool want_write) const = 0;

  /// Called after poll(2) reported `revents` on PollFd(), before ReadSome/WriteSome are
  /// retried (a vchan acknowledges its event channel here). Throws TransportError.
  virtual void OnPollEvents(short revents) = 0;

  /// Releases the channel; the peer then sees it closed. Idempotent; never throws.
  virtual void Close() noexcept = 0;
};

}  // namespace dmahil::agent::transport
