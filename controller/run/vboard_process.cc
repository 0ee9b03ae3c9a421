#include "controller/run/vboard_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace dmahil::controller {
namespace {

/// Reads one '\n'-terminated line from fd within timeout_ms; "" on EOF or timeout.
/// *eof is set when the pipe closed (the child is gone or closed its stdout).
std::string ReadLine(int fd, uint32_t timeout_ms, bool* eof) {
  *eof = false;
  std::string line;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "";
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
    char c = 0;
    const ssize_t n = read(fd, &c, 1);
    if (n == 0) *eof = true;
    if (n <= 0) return "";
    if (c == '\n') return line;
    line.push_back(c);
  }
}

/// Size of `file` in bytes, 0 if it does not exist.
uintmax_t SizeOf(const std::filesystem::path& file) {
  std::error_code ec;
  const uintmax_t n = std::filesystem::file_size(file, ec);
  return ec ? 0 : n;
}

/// What the console got from `from` (a byte offset) on, from its first error line: the
/// text after the logger's "[error] " prefix and every line after it, at most 4000
/// bytes; the last line written if no line is an error; "" if nothing was written.
std::string ConsoleError(const std::filesystem::path& console, uintmax_t from) {
  std::ifstream in(console, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(from));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  constexpr std::string_view kError = "[error] ";
  if (const size_t at = text.find(kError); at != std::string::npos) {
    text = text.substr(at + kError.size());
  } else if (const size_t nl = text.rfind('\n'); nl != std::string::npos) {
    text = text.substr(nl + 1);
  }
  if (text.size() > 4000) text = text.substr(0, 4000) + " ...";
  return text;
}

}  // namespace

VirtualBoardProcess::VirtualBoardProcess(const std::filesystem::path& vboard,
                                         const std::filesystem::path& board_file,
                                         const std::vector<std::string>& faults, uint64_t seed,
                                         const std::filesystem::path& console_log,
                                         uint32_t boot_timeout_ms,
                                         const std::filesystem::path& revision_dir) {
  std::vector<std::string> args = {vboard.string(), "--board", board_file.string(), "--seed",
                                   std::to_string(seed)};
  if (!faults.empty()) {
    std::string joined;
    for (const std::string& f : faults) joined += (joined.empty() ? "" : ",") + f;
    args.insert(args.end(), {"--faults", joined});
  }
  if (!revision_dir.empty()) args.insert(args.end(), {"--revision-dir", revision_dir.string()});
  const uintmax_t console_start = SizeOf(console_log);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2];
  int in[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0)
    throw BoardError(fmt::format("pipe: {}", std::strerror(errno)));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, console_log.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(in[0]);
  stdin_fd_ = in[1];
  if (rc != 0) {
    close(out[0]);
    close(stdin_fd_);
    pid_ = -1;
    throw BoardError(fmt::format("cannot start {}: {}", vboard.string(), std::strerror(rc)));
  }
  bool eof = false;
  const std::string line = ReadLine(out[0], boot_timeout_ms, &eof);
  close(out[0]);
  if (line.empty() && eof) {
    // Gone before ready: give it up to 2 s to exit, then say why it stopped.
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 200 && done == 0; ++i) {
      done = waitpid(pid_, &status, WNOHANG);
      if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done == pid_) {
      pid_ = -1;
      PowerOff();
      const std::string how = WIFEXITED(status)
                                  ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                  : fmt::format("was killed by signal {}", WTERMSIG(status));
      const std::string why = ConsoleError(console_log, console_start);
      throw BoardError(fmt::format("{} {} before it was ready{}; console: {}", vboard.string(), how,
                                   why.empty() ? "" : ": " + why, console_log.string()));
    }
  }
  if (line.empty()) {
    PowerOff();
    throw BoardError(fmt::format("{} did not report ready within {} ms; console: {}",
                                 board_file.string(), boot_timeout_ms, console_log.string()));
  }
  try {
    const nlohmann::json j = nlohmann::json::parse(line);
    ready_.dom0 = j.at("dom0").get<std::string>();
    ready_.guest = j.at("guest").get<std::string>();
    const std::string device = j.at("device").get<std::string>();
    const size_t colon = device.rfind(':');
    ready_.device_host = device.substr(0, colon);
    ready_.device_port = static_cast<uint16_t>(std::stoul(device.substr(colon + 1)));
    ready_.revision = j.value("revision", "");
  } catch (const std::exception& e) {
    PowerOff();
    throw BoardError(
        fmt::format("bad ready line from {}: \"{}\": {}", vboard.string(), line, e.what()));
  }
}

VirtualBoardProcess::~VirtualBoardProcess() { PowerOff(); }

void VirtualBoardProcess::PowerOff() {
  if (stdin_fd_ >= 0) {
    close(stdin_fd_);
    stdin_fd_ = -1;
  }
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

}  // namespace dmahil::controller
