// Child processes that stand for a board's power: QEMU for the qemu-xen board
// (qemu_power.h), dmahil-vboard for a virtual board (controller/run/kinds/virtual_kind.h).
// Boost.Process, the same library the bisect hooks use (controller/bisect/process.h), so no
// fork/exec or pipe code of our own; and a pty pair that stands for the board's UART.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/process/child.hpp>
#include <boost/process/group.hpp>
#include <boost/process/pipe.hpp>

#include "controller/lab/serial_console.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::lab {

/// How a reaped child ended, from its waitpid() status: "exit status N" or "killed by
/// signal N (NAME)".
std::string HowEnded(int native_status);

/// Waits up to `timeout_ms` for `child` to exit (polling every 20 ms: Boost 1.74's
/// wait_for is unreliable). True if it exited.
bool WaitExit(boost::process::child& child, uint32_t timeout_ms);

/// Starts `exe args` in `group` (its own process group) with stdout and stderr written to
/// `out` (a FILE* the caller keeps and closes) and stdin from `in` (its read end), or from
/// /dev/null when `in` is null. The child gets SIGKILL if the controller thread that started
/// it dies (PR_SET_PDEATHSIG), so a crashed controller leaves no board process behind.
/// Throws LabError naming `exe` when it cannot be started.
std::unique_ptr<boost::process::child> SpawnChild(const std::filesystem::path& exe,
                                                  const std::vector<std::string>& args, FILE* out,
                                                  boost::process::group& group,
                                                  boost::process::pipe* in = nullptr);

/// A pty pair in raw mode (no echo, no "\n" -> "\r\n"): the slave is what a board process
/// writes its console to, the master is read by a SerialConsole. The pair stays open across
/// power cycles, so the master never reads EIO (hang-up) while the board is down.
class PtyPair {
 public:
  /// Opens the pair. Throws LabError with errno's text if openpty fails; `who` names the
  /// user in that message (e.g. "QEMU's serial port").
  explicit PtyPair(const std::string& who);
  ~PtyPair();
  PtyPair(const PtyPair&) = delete;
  PtyPair& operator=(const PtyPair&) = delete;

  /// The slave's path, e.g. "/dev/pts/7".
  const std::string& slave_path() const { return slave_path_; }
  /// A FILE* writing to (a duplicate of) the slave, for SpawnChild's `out`; the caller
  /// fcloses it. Throws LabError if the descriptor cannot be duplicated.
  FILE* OpenSlaveForWriting() const;
  /// A SerialConsole on (a duplicate of) the master, named `name` in its log and errors,
  /// logging to `log`. Throws LabError as SerialConsole does.
  std::unique_ptr<SerialConsole> OpenConsole(const v1::SerialConsole& config,
                                             const std::string& name,
                                             const std::filesystem::path& log) const;

 private:
  int master_ = -1;
  int slave_ = -1;
  std::string slave_path_;
};

}  // namespace dmahil::lab
