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

/// What libblkid's safe probe (blkid_do_safeprobe, superblocks and partition tables) finds
/// on `path`: the file system's TYPE ("ext4", "vfat", "swap") or the partition table's
/// PTTYPE ("gpt", "dos"); empty when it finds none. Throws std::runtime_error naming the
/// path when the probe cannot run or finds more than one (ambivalent) signature.
std::string Signature(const std::string& path);

class BlockDevice {
 public:
  /// Opens `path` O_RDWR | O_DIRECT: a block device (size BLKGETSIZE64, logical block size
  /// BLKSSZGET; refused while mounted, per /proc/self/mountinfo), or, for tests, a regular
  /// file (its size, 4096-byte blocks). Either is refused when it carries a signature
  /// (Signature(): a file system or partition table BlockIo would destroy) unless
  /// `destructive`. Throws std::runtime_error naming the path and the errno or the reason
  /// when it cannot be used.
  static std::unique_ptr<BlockDevice> Open(const std::string& path, bool destructive = false);

  ~BlockDevice();
  BlockDevice(const BlockDevice&) = delete;
  BlockDevice& operator=(const BlockDevice&) = delete;

  const std::string& path() const { return path_; }
  uint64_t bytes() const { return bytes_; }              // size, bytes
  uint32_t sector_size() const { return sector_size_; }  // logical block size, bytes
  /// Signature() when it was opened (only ever non-empty if opened destructive).
  const std::string& signature() const { return signature_; }

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
  std::string signature_;
  int fd_;
  uint64_t bytes_;
  uint32_t sector_size_;
};

}  // namespace dmahil::agent::linux_xen
