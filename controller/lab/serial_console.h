// A board's serial console (docs/architecture.md §4, §10; lab.proto SerialConsole): a tty opened
// with Boost.Asio serial_port, captured continuously on its own thread into a log file, with
// expect-style waits and the crash detector of crash_detector.h.
#pragma once

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/serial_port.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/problems.h"
#include "controller/lab/crash_detector.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::lab {

/// One serial console, captured from construction to Close().
///
/// Lines: bytes are split at '\n'; '\r' and NUL bytes are dropped; a line longer than
/// kMaxLineBytes is split. The log (appended to, its folder created) gets a header
///   "# dmahil console <device> <baud> <8N1>[ rts/cts], opened <UTC wall clock, ms>"
/// then one "[     12345 ms] text" line per console line (ms since open, when the line's
/// first byte arrived), flushed line by line, and "# closed" at Close(). A partial line
/// is logged at Close().
///
/// Every line goes through a CrashRecorder: the first fatal line ends waits (see WaitFor).
/// Thread-safe: WaitFor, Send, crash() and Close() may be called from any thread.
class SerialConsole {
 public:
  static constexpr size_t kMaxLineBytes = 4096;
  /// Lines kept for WaitFor; older unexamined lines are dropped beyond this.
  static constexpr size_t kMaxPendingLines = 100000;
  /// Bound on Send, ms (a stuck write, e.g. CTS never asserted with rts_cts).
  static constexpr uint32_t kSendTimeoutMs = 5000;

  /// Opens `config.device` and starts capturing into `log`. Defaults as in lab.proto:
  /// baud 0 means 115200, data_bits 0 means 8 (else 5..8), stop_bits 0 means 1 (else 1 or
  /// 2), parity, rts_cts hardware flow control (else none). The tty is opened
  /// non-blocking in raw mode (Boost.Asio), so opening never waits for a carrier.
  /// Throws LabError naming the device for a device that cannot be opened (e.g. missing)
  /// or configured, or naming the log file if it cannot be opened.
  SerialConsole(const v1::SerialConsole& config, const std::filesystem::path& log);
  /// Captures a tty that is already open, e.g. the master of a pty pair whose slave QEMU
  /// writes its serial port to (qemu_power.h). Takes ownership of `fd` (closed by Close(),
  /// also when this throws). `name` stands for the device in the log header, device() and
  /// errors (config.device is replaced by it). The line settings of `config` are not
  /// applied: the tty keeps its own (a pty has no baud rate). Throws LabError naming
  /// `name` if `fd` is not an open descriptor, or the log file if it cannot be opened.
  SerialConsole(const v1::SerialConsole& config, int fd, const std::string& name,
                const std::filesystem::path& log);
  /// Close()s.
  ~SerialConsole();

  SerialConsole(const SerialConsole&) = delete;
  SerialConsole& operator=(const SerialConsole&) = delete;

  /// Waits up to `timeout_ms` for a line matching `regex` (ECMAScript, std::regex_search:
  /// anywhere in the line). Examines the lines received since the previous WaitFor
  /// returned (or since open), then new lines as they arrive: a match consumes the lines
  /// up to and including the matching one (later lines stay for the next WaitFor); a
  /// timeout consumes every line examined. Lines before a crash line can still match. Returns true
  /// on a match (the line in
  /// `*line`, if given); false on timeout, or early, as soon as a fatal crash line is
  /// reached (see crash()) or once Close()d. Throws LabError naming the device for a bad
  /// regex, or if reading the tty failed (e.g. the adapter vanished) and no line matched.
  bool WaitFor(const std::string& regex, uint32_t timeout_ms, std::string* line = nullptr);

  /// WaitFor(config.agent_ready). Throws LabError if agent_ready is empty.
  bool WaitForAgentReady(uint32_t timeout_ms, std::string* line = nullptr);

  /// Writes `bytes` to the tty as they are (add "\n" or "\r" yourself). Throws LabError
  /// naming the device on a write error, after Close(), or after kSendTimeoutMs.
  void Send(std::string_view bytes);

  /// The first fatal crash since open (or ClearCrash()): its kind, line and excerpt (20
  /// lines before, up to 40 after, growing as lines arrive). nullopt if none.
  std::optional<ConsoleCrash> crash() const;
  /// Warnings (WARN_ON) seen, at most CrashRecorder::kMaxWarnings.
  std::vector<ConsoleCrash> warnings() const;
  /// Forgets the crash, the warnings and every line not yet examined by WaitFor: call it
  /// before power-cycling a board that crashed.
  void ClearCrash();

  /// Stops capturing, logs a partial line and "# closed", closes the tty. Idempotent.
  void Close();

  /// The device path, as configured.
  const std::string& device() const { return config_.device(); }
  /// The regex WaitForAgentReady waits for (config.agent_ready).
  const std::string& agent_ready() const { return config_.agent_ready(); }
  /// The number of lines received since open.
  uint64_t line_count() const;

 private:
  using Clock = std::chrono::steady_clock;

  void OpenLog(const std::string& settings);  // opens log_, writes the header, starts reading
  void StartRead();
  void OnBytes(const char* data, size_t n);
  void CompleteLine();  // called with mu_ held
  uint64_t MsSinceOpen(Clock::time_point t) const;

  v1::SerialConsole config_;
  std::filesystem::path log_path_;
  Clock::time_point opened_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::serial_port port_;
  std::array<char, 4096> read_buf_{};
  std::thread thread_;
  std::once_flag close_once_;
  std::mutex send_mu_;  // one Send at a time

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::ofstream log_;
  std::string partial_;
  Clock::time_point partial_start_;
  uint64_t lines_ = 0;
  std::deque<ConsoleLine> pending_;  // received, not yet examined by WaitFor
  CrashRecorder recorder_;
  std::optional<std::string> read_error_;
  bool closing_ = false;
  bool closed_ = false;
};

/// Checks the line settings of a farm's console wiring that every console uses; `path` is
/// its field path in the farm file (e.g. "board[0].wiring.console"): data_bits 0 (8) or
/// 5..8, stop_bits 0 (1), 1 or 2, agent_ready (if given) a valid ECMAScript regex (as
/// SerialConsole compiles it). Adds each problem to `problems` (the farm file's).
void ValidateConsoleSettings(const v1::SerialConsole& console, const std::string& path,
                             Problems& problems);

/// Checks a farm's console wiring for a UART (a tty SerialConsole opens): a device, claimed
/// in `claims` as "serial device <device>" (two boards cannot share one); a standard baud
/// rate (common/validate.h StandardBaud) equal to the board file's console.baud, when the
/// board gives a standard one (the rate its firmware sets and Xen keeps); and
/// ValidateConsoleSettings. Adds each problem to `problems` (the farm file's).
void ValidateSerialConsole(const v1::SerialConsole& console, const v1::Board& board,
                           const std::string& path, Problems& problems, Claims& claims);

}  // namespace dmahil::lab
