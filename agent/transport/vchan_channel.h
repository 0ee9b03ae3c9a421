// VchanChannel: a ByteChannel over a libxenvchan stream (Xen's tools/libs/vchan, the
// Qubes-derived inter-domain ring). The guest is the vchan server: it grants the rings
// (gntalloc) and publishes them in xenstore under <xs_path>/{ring-ref,event-channel};
// dom0 is the client: it maps those grants (gntdev) and binds the event channel.
//
// Needs, in the guest: /dev/xen/gntalloc (module xen-gntalloc), /dev/xen/evtchn
// (xen-evtchn) and xenstore access (/dev/xen/xenbus); in dom0: /dev/xen/gntdev
// (xen-gntdev), /dev/xen/evtchn and xenstored.
//
// A vchan serves one client: after the client leaves, the guest closes it (which removes
// its xenstore nodes, init.c close_xs_srv) and listens on a fresh one.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "agent/transport/byte_channel.h"
#include "agent/transport/stop_signal.h"

struct libxenvchan;

namespace dmahil::agent::transport {

/// Xenstore path of the agent's vchan, relative to the guest's /local/domain/<domid>.
inline constexpr const char* kAgentVchanPath = "data/dmahil-agent";
/// Ring size each way, bytes (16 4-KiB pages each; libxenvchan allows up to 1 MiB).
inline constexpr std::size_t kAgentVchanRingBytes = 64 * 1024;

/// The ring size each way the guest agent asks libxenvchan for on a kernel whose PAGE_SIZE
/// is `page_size` bytes: kAgentVchanRingBytes with 4 KiB pages; one 4 KiB grant per ring
/// (4096) with larger pages. Xen 4.17's libxengntshr and libxengnttab mmap a ring of `count`
/// grants as count * 4 KiB (tools/libs/gntshr/linux.c, tools/libs/gnttab/linux.c), while
/// gntalloc and gntdev give each grant its own Linux page: for count > 1 dom0's gntdev_mmap
/// refuses the mapping (vma_pages() != count: EINVAL, "gnttab: error: mmap failed") and
/// the guest's gntalloc maps only the first grant. One grant per ring is one Linux page
/// either way.
constexpr std::size_t AgentVchanRingBytes(std::size_t page_size) {
  return page_size <= 4096 ? kAgentVchanRingBytes : 4096;
}

class VchanChannel final : public ByteChannel {
 public:
  /// Guest side: creates a vchan server for client domain `peer_domid` (0: dom0) at
  /// `xs_path` (relative paths are under this domain's /local/domain/<domid>), with
  /// rings of at least `ring_bytes` each way. Throws TransportError naming the path if
  /// libxenvchan_server_init fails (no gntalloc/evtchn device, no xenstore, path not
  /// writable); errno then tells which.
  static std::unique_ptr<VchanChannel> Listen(int peer_domid, const std::string& xs_path,
                                              std::size_t ring_bytes = kAgentVchanRingBytes);

  /// dom0 side: connects to the server of domain `domid` at absolute `xs_path`. Throws
  /// TransportError if libxenvchan_client_init fails (no server yet: its xenstore nodes are
  /// missing; or the grant/event channel could not be mapped/bound) or if the server is
  /// already closed (stale nodes of a server that is going away).
  static std::unique_ptr<VchanChannel> Connect(int domid, const std::string& xs_path);

  /// Like Connect, retrying every `retry_interval` until `timeout` passes or `stop` is set
  /// (the guest re-creates its server after each client, so it can briefly be missing).
  /// Returns nullptr if stopped; throws the last TransportError on timeout.
  static std::unique_ptr<VchanChannel> ConnectWithRetry(
      int domid, const std::string& xs_path, std::chrono::milliseconds timeout,
      const StopSignal* stop = nullptr,
      std::chrono::milliseconds retry_interval = std::chrono::milliseconds(100));

  ~VchanChannel() override { Close(); }
  VchanChannel(const VchanChannel&) = delete;
  VchanChannel& operator=(const VchanChannel&) = delete;

  /// Server only: blocks until a client has connected (true) or `stop` is set (false).
  /// Throws TransportError if waiting on the event channel fails.
  bool WaitForClient(const StopSignal* stop);

  /// libxenvchan_read, non-blocking. Data the peer sent before closing is still returned.
  IoResult ReadSome(std::span<std::byte> buf) override;
  /// libxenvchan_write, non-blocking: writes what fits in the ring.
  IoResult WriteSome(std::span<const std::byte> data) override;
  /// The event channel fd (libxenvchan_fd_for_select); always polled for POLLIN.
  int PollFd() const override;
  short PollEvents(bool want_read, bool want_write) const override;
  /// Acknowledges the event (libxenvchan_wait, which does not block once POLLIN is seen).
  void OnPollEvents(short revents) override;
  /// libxenvchan_close: tells the peer (it sees closed) and, for a server, removes the
  /// xenstore nodes.
  void Close() noexcept override;

 private:
  VchanChannel(libxenvchan* ctrl, std::string description);
  libxenvchan* ctrl_;
  std::string description_;  // "vchan server <path> (peer 0)", for errors
};

}  // namespace dmahil::agent::transport
