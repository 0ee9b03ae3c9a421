#include "controller/run/disk_backing.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace dmahil::controller {
namespace {

/// An open file descriptor, closed on every path out.
class Fd {
 public:
  Fd(const std::filesystem::path& file, int flags) : fd_(::open(file.c_str(), flags | O_CLOEXEC)) {
    if (fd_ < 0)
      throw DiskError(
          fmt::format("disk backing {}: open: {}", file.string(), std::strerror(errno)));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

DiskBacking::~DiskBacking() = default;

std::string FileDiskBacking::Read(uint64_t offset, uint64_t length) {
  const Fd fd(file_, O_RDONLY);
  std::string out(length, '\0');
  uint64_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(fd.get(), out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw DiskError(fmt::format("disk backing {}: read of {} bytes at {:#x}: {}", file_.string(),
                                  length, offset,
                                  n == 0 ? "past the end of the file" : std::strerror(errno)));
    done += static_cast<uint64_t>(n);
  }
  return out;
}

void FileDiskBacking::Write(uint64_t offset, std::string_view data) {
  const Fd fd(file_, O_WRONLY);
  uint64_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done,
                               static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw DiskError(fmt::format("disk backing {}: write of {} bytes at {:#x}: {}", file_.string(),
                                  data.size(), offset, std::strerror(errno)));
    done += static_cast<uint64_t>(n);
  }
}

}  // namespace dmahil::controller
