// StopSignal: a one-shot, pollable stop request (an eventfd) shared by the transport's
// blocking loops (Pump, VchanChannel::WaitForClient, ServeGrpcOverChannels, VchanRelay).
#pragma once

namespace dmahil::agent::transport {

class StopSignal {
 public:
  /// Throws TransportError if eventfd(2) fails.
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  /// Requests a stop; thread-safe, async-signal-safe, idempotent. Once set it stays set.
  void Set() noexcept;
  /// True once Set() was called.
  bool IsSet() const noexcept;
  /// Readable (POLLIN) once Set() was called.
  int Fd() const noexcept { return fd_; }

 private:
  int fd_;
};

}  // namespace dmahil::agent::transport
