// The device side of a board's PV disk (docs/architecture.md §14): the bytes the storage
// device holds, read and written by the controller without the board's help, so a PV
// block fixture can tell what the device took from memory (after the domU's write) and
// decide what the device will put into memory (before the domU's read).
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dmahil::controller {

/// The device side of the disk could not be read or written. what() names the backing
/// and the operation.
class DiskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A disk as the device holds it. Byte offsets are the disk's (the namespace's LBA x its
/// sector size). Not thread-safe: one fixture runner uses it.
class DiskBacking {
 public:
  virtual ~DiskBacking();
  /// What the backing is, for messages (e.g. the file's path).
  virtual std::string Describe() const = 0;
  /// `length` bytes at `offset`. Throws DiskError when they cannot all be read.
  virtual std::string Read(uint64_t offset, uint64_t length) = 0;
  /// Writes `data` at `offset`, visible to the device's next read. Throws DiskError.
  virtual void Write(uint64_t offset, std::string_view data) = 0;
};

/// A raw image file on the controller's host that the device emulator reads and writes
/// through the host's page cache (QEMU's default cache=writeback for a raw -drive): the
/// qemu-xen board's nvme.img (lab::QemuPowerSwitch::nvme_image_path). The file is opened
/// at each call, so a board that recreates it at power-on needs no reopening.
class FileDiskBacking final : public DiskBacking {
 public:
  explicit FileDiskBacking(std::filesystem::path file) : file_(std::move(file)) {}
  std::string Describe() const override { return file_.string(); }
  std::string Read(uint64_t offset, uint64_t length) override;
  void Write(uint64_t offset, std::string_view data) override;

 private:
  std::filesystem::path file_;
};

}  // namespace dmahil::controller
