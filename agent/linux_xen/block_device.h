// The agent's block device for BlockIo (docs/architecture.md §14): on the qemu-xen board
// the domU's PV disk /dev/xvdb (xen-blkfront), opened O_DIRECT so that the bytes move
// between the caller's own pages and the device with no page cache between them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <istream>
#include <memory>
#include <string>

#include <grpcpp/support/status.h>

namespace dmahil::agent::linux_xen {

/// True if a line of `mountinfo` (the format of /proc/self/mountinfo, proc(5): field 3 is
/// "major:minor" of the mounted device) names device `dev`.
bool IsMounted(dev_t dev, std::istream& mountinfo);

class BlockDevice {
 public:
  /// Opens `path` O_RDWR | O_DIRECT: a block device (size BLKGETSIZE64, logical block size
  /// BLKSSZGET; refused while mounted, per /proc/self/mountinfo), or, for tests, a regular
  /// file (its size, 4096-byte blocks). Throws std::runtime_error naming the path and the
  /// errno or the reason when it cannot be used.
  static std::unique_ptr<BlockDevice> Open(const std::string& path);

  ~BlockDevice();
  BlockDevice(const BlockDevice&) = delete;
  BlockDevice& operator=(const BlockDevice&) = delete;

  const std::string& path() const { return path_; }
  uint64_t bytes() const { return bytes_; }              // size, bytes
  uint32_t sector_size() const { return sector_size_; }  // logical block size, bytes

  /// One pwritev (write) or preadv of [data, data + length) at byte disk_offset, cut into
  /// `segments` iovecs of whole sectors in buffer order (the first ones one sector longer).
  /// The caller has checked alignment and bounds (length holds at least `segments`
  /// sectors; O_DIRECT also wants `data` aligned to the sector size). elapsed_us gets the
  /// call's wall time. Errors: the errno of the call (e.g. EINVAL for a misaligned
  /// buffer, EIO from the device), DATA_LOSS for a short transfer.
  grpc::Status Transfer(bool write, uint8_t* data, uint64_t length, uint64_t disk_offset,
                        uint32_t segments, uint64_t* elapsed_us);

 private:
  BlockDevice(std::string path, int fd, uint64_t bytes, uint32_t sector_size)
      : path_(std::move(path)), fd_(fd), bytes_(bytes), sector_size_(sector_size) {}

  std::string path_;
  int fd_;
  uint64_t bytes_;
  uint32_t sector_size_;
};

}  // namespace dmahil::agent::linux_xen
