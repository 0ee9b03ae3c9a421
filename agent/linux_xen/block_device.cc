#include "agent/linux_xen/block_device.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

namespace dmahil::agent::linux_xen {

bool IsMounted(dev_t dev, std::istream& mountinfo) {
  const std::string want = fmt::format("{}:{}", major(dev), minor(dev));
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string mount_id, parent_id, device;
    if (fields >> mount_id >> parent_id >> device && device == want) return true;
  }
  return false;
}

std::unique_ptr<BlockDevice> BlockDevice::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error(fmt::format("block device {}: cannot open O_RDWR|O_DIRECT: {}", path,
                                         std::strerror(errno)));
  const auto fail = [&](const std::string& why) {
    ::close(fd);
    throw std::runtime_error(fmt::format("block device {}: {}", path, why));
  };
  struct stat st {};
  if (::fstat(fd, &st) < 0) fail(fmt::format("fstat: {}", std::strerror(errno)));
  if (S_ISREG(st.st_mode))
    return std::unique_ptr<BlockDevice>(
        new BlockDevice(path, fd, static_cast<uint64_t>(st.st_size), 4096));
  if (!S_ISBLK(st.st_mode)) fail("neither a block device nor a regular file");
  std::ifstream mountinfo("/proc/self/mountinfo");
  if (IsMounted(st.st_rdev, mountinfo))
    fail("is mounted (/proc/self/mountinfo): block I/O would overwrite a file system");
  uint64_t bytes = 0;
  int sector = 0;
  if (::ioctl(fd, BLKGETSIZE64, &bytes) < 0)
    fail(fmt::format("BLKGETSIZE64: {}", std::strerror(errno)));
  if (::ioctl(fd, BLKSSZGET, &sector) < 0 || sector <= 0)
    fail(fmt::format("BLKSSZGET: {}", std::strerror(errno)));
  return std::unique_ptr<BlockDevice>(
      new BlockDevice(path, fd, bytes, static_cast<uint32_t>(sector)));
}

BlockDevice::~BlockDevice() { ::close(fd_); }

grpc::Status BlockDevice::Transfer(bool write, uint8_t* data, uint64_t length, uint64_t disk_offset,
                                   uint32_t segments, uint64_t* elapsed_us) {
  const uint64_t sectors = length / sector_size_;
  std::vector<iovec> iov(segments);
  uint8_t* at = data;
  for (uint32_t i = 0; i < segments; ++i) {
    const uint64_t n = (sectors / segments + (i < sectors % segments ? 1 : 0)) * sector_size_;
    iov[i] = {at, n};
    at += n;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const ssize_t done = write ? ::pwritev(fd_, iov.data(), static_cast<int>(iov.size()),
                                         static_cast<off_t>(disk_offset))
                             : ::preadv(fd_, iov.data(), static_cast<int>(iov.size()),
                                        static_cast<off_t>(disk_offset));
  const int err = errno;
  *elapsed_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
  const char* call = write ? "pwritev" : "preadv";
  if (done < 0)
    return grpc::Status(
        err == EINVAL ? grpc::StatusCode::INVALID_ARGUMENT : grpc::StatusCode::INTERNAL,
        fmt::format("{} of {} bytes in {} iovecs at {:#x} on {}: {}", call, length, segments,
                    disk_offset, path_, std::strerror(err)));
  if (static_cast<uint64_t>(done) != length)
    return grpc::Status(grpc::StatusCode::DATA_LOSS,
                        fmt::format("{} of {} bytes at {:#x} on {} moved {} bytes", call, length,
                                    disk_offset, path_, done));
  return grpc::Status::OK;
}

}  // namespace dmahil::agent::linux_xen
