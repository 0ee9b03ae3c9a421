// Power for a virtual board: "power on" starts a dmahil-vboard child process, "power off"
// stops it. The child's stderr is the board's console, logged to a file; its stdin is a
// pipe, so a controller that dies takes its boards with it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace dmahil::controller {

/// The board did not come up (spawn failed, exited, or no ready line within the boot
/// timeout): an infrastructure error, never a test failure.
class BoardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The loopback endpoints a virtual board reported when ready.
struct VboardReady {
  std::string dom0;  // "127.0.0.1:port"
  std::string guest;
  std::string device_host;
  uint16_t device_port = 0;
  std::string revision;  // injected faults, "none"
};

class VirtualBoardProcess {
 public:
  /// Starts `vboard` --board board_file --seed seed [--faults a,b] [--revision-dir
  /// revision_dir] (the latter when revision_dir is not empty) with stderr appended to
  /// console_log, and waits up to boot_timeout_ms for its ready line. Throws BoardError;
  /// when the process exits before it is ready (e.g. exit 2 for a bad board file or
  /// revision folder), the message has its exit status and the console's error lines
  /// of this boot.
  VirtualBoardProcess(const std::filesystem::path& vboard, const std::filesystem::path& board_file,
                      const std::vector<std::string>& faults, uint64_t seed,
                      const std::filesystem::path& console_log, uint32_t boot_timeout_ms,
                      const std::filesystem::path& revision_dir = {});
  /// Powers the board off (PowerOff()).
  ~VirtualBoardProcess();
  VirtualBoardProcess(const VirtualBoardProcess&) = delete;
  VirtualBoardProcess& operator=(const VirtualBoardProcess&) = delete;

  const VboardReady& ready() const { return ready_; }
  /// SIGTERM, then SIGKILL after 2 s; reaps the child. Idempotent.
  void PowerOff();

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  VboardReady ready_;
};

}  // namespace dmahil::controller
