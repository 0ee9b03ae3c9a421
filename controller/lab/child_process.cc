#include "controller/lab/child_process.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/process/args.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "controller/lab/lab_error.h"

namespace dmahil::lab {

namespace bp = boost::process;
namespace fs = std::filesystem;

std::string HowEnded(int native_status) {
  if (WIFSIGNALED(native_status))
    return fmt::format("killed by signal {} ({})", WTERMSIG(native_status),
                       strsignal(WTERMSIG(native_status)));
  return fmt::format("exit status {}", WEXITSTATUS(native_status));
}

bool WaitExit(bp::child& child, uint32_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    std::error_code ec;
    if (!child.running(ec)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::unique_ptr<bp::child> SpawnChild(const fs::path& exe, const std::vector<std::string>& args,
                                      FILE* out, bp::group& group, bp::pipe* in) {
  const auto death_signal =
      bp::extend::on_exec_setup([](auto&) { ::prctl(PR_SET_PDEATHSIG, SIGKILL); });
  try {
    if (in != nullptr)
      return std::make_unique<bp::child>(exe.string(), bp::args(args),
                                         bp::std_in<*in, (bp::std_out & bp::std_err)> out, group,
                                         death_signal);
    return std::make_unique<bp::child>(exe.string(), bp::args(args),
                                       bp::std_in<bp::null, (bp::std_out & bp::std_err)> out, group,
                                       death_signal);
  } catch (const std::exception& e) {
    throw LabError(fmt::format("{}: cannot start: {}", exe.string(), e.what()));
  }
}

PtyPair::PtyPair(const std::string& who) {
  char name[256] = {};
  if (openpty(&master_, &slave_, name, nullptr, nullptr) != 0)
    throw LabError(fmt::format("openpty for {}: {}", who, std::strerror(errno)));
  slave_path_ = name;
  termios t{};
  if (tcgetattr(slave_, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(slave_, TCSANOW, &t);
  }
  fcntl(master_, F_SETFD, FD_CLOEXEC);
  fcntl(slave_, F_SETFD, FD_CLOEXEC);
}

PtyPair::~PtyPair() {
  if (master_ >= 0) ::close(master_);
  if (slave_ >= 0) ::close(slave_);
}

FILE* PtyPair::OpenSlaveForWriting() const {
  const int fd = ::fcntl(slave_, F_DUPFD_CLOEXEC, 0);
  FILE* f = fd < 0 ? nullptr : ::fdopen(fd, "w");
  if (f == nullptr) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw LabError(
        fmt::format("{}: cannot duplicate the pty slave: {}", slave_path_, std::strerror(err)));
  }
  return f;
}

std::unique_ptr<SerialConsole> PtyPair::OpenConsole(const v1::SerialConsole& config,
                                                    const std::string& name,
                                                    const fs::path& log) const {
  const int fd = ::fcntl(master_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    throw LabError(
        fmt::format("{}: cannot duplicate the pty master: {}", slave_path_, std::strerror(errno)));
  return std::make_unique<SerialConsole>(config, fd, name, log);
}

}  // namespace dmahil::lab
