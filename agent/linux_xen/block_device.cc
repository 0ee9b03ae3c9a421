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

#include <blkid/blkid.h>
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

std::string Signature(const std::string& path) {
  // A probe of its own, not through the O_DIRECT descriptor: libblkid reads into
  // unaligned buffers.
  blkid_probe pr = blkid_new_probe_from_filename(path.c_str());
  if (pr == nullptr)
    throw std::runtime_error(
        fmt::format("block device {}: libblkid cannot probe it: {}", path, std::strerror(errno)));
  blkid_probe_enable_superblocks(pr, 1);
  blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE);
  blkid_probe_enable_partitions(pr, 1);
  blkid_probe_set_partitions_flags(pr, BLKID_PARTS_MAGIC);
  const int rc = blkid_do_safeprobe(pr);
  std::string found;
  const char* value = nullptr;
  if (rc == 0 && (blkid_probe_lookup_value(pr, "TYPE", &value, nullptr) == 0 ||
                  blkid_probe_lookup_value(pr, "PTTYPE", &value, nullptr) == 0))
    found = value;
  blkid_free_probe(pr);
  if (rc == -2)
    throw std::runtime_error(fmt::format(
        "block device {}: libblkid finds more than one signature on it (ambivalent)", path));
  if (rc < 0) throw std::runtime_error(fmt::format("block device {}: libblkid probe failed", path));
  if (rc == 0 && found.empty()) found = "unknown";
  return found;
}

std::unique_ptr<BlockDevice> BlockDevice::Open(const std::string& path, bool destructive) {
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
  uint64_t bytes = static_cast<uint64_t>(st.st_size);
  int sector = 4096;
  if (!S_ISREG(st.st_mode)) {
    if (!S_ISBLK(st.st_mode)) fail("neither a block device nor a regular file");
    std::ifstream mountinfo("/proc/self/mountinfo");
    if (IsMounted(st.st_rdev, mountinfo))
      fail("is mounted (/proc/self/mountinfo): block I/O would overwrite a file system");
    if (::ioctl(fd, BLKGETSIZE64, &bytes) < 0)
      fail(fmt::format("BLKGETSIZE64: {}", std::strerror(errno)));
    if (::ioctl(fd, BLKSSZGET, &sector) < 0 || sector <= 0)
      fail(fmt::format("BLKSSZGET: {}", std::strerror(errno)));
  }
  std::string signature;
  try {
    signature = Signature(path);
  } catch (...) {
    ::close(fd);
    throw;  // already names the path
  }
  if (!signature.empty() && !destructive)
    fail(
        fmt::format("carries a \"{}\" signature (libblkid): block I/O would destroy it; wipe it "
                    "(wipefs -a) or pass --destructive (docs/lab-block-device.md)",
                    signature));
  std::unique_ptr<BlockDevice> dev(new BlockDevice(path, fd, bytes, static_cast<uint32_t>(sector)));
  dev->signature_ = std::move(signature);
  return dev;
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
