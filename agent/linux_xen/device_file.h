// The narrow seam between the linux-xen backend and the kernel: one open character device
// (/dev/xen/gntalloc, /dev/xen/gntdev, /dev/dmahil) and the three calls the backend makes
// on it. The real implementation is PosixDeviceFile; tests put a fake kernel behind the
// same interface to check the ioctl arguments the backend builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dmahil::agent::linux_xen {

class DeviceFile {
 public:
  virtual ~DeviceFile() = default;
  /// ioctl(2): 0 on success, else the errno (never -1).
  virtual int Ioctl(unsigned long request, void* arg) = 0;
  /// mmap(2) of `bytes` at file offset `offset`, PROT_READ|PROT_WRITE, MAP_SHARED.
  /// nullptr on failure with the errno in *err.
  virtual void* Map(size_t bytes, uint64_t offset, int* err) = 0;
  /// munmap(2); 0 or the errno.
  virtual int Unmap(void* addr, size_t bytes) = 0;
  /// The path it was opened from, for messages.
  virtual const std::string& path() const = 0;
};

/// Opens `path` O_RDWR|O_CLOEXEC. Returns nullptr with the errno in *err if it cannot.
std::unique_ptr<DeviceFile> OpenDeviceFile(const std::string& path, int* err);

}  // namespace dmahil::agent::linux_xen
