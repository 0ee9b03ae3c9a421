#include "agent/linux_xen/device_file.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace dmahil::agent::linux_xen {
namespace {

class PosixDeviceFile final : public DeviceFile {
 public:
  PosixDeviceFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixDeviceFile() override { ::close(fd_); }
  PosixDeviceFile(const PosixDeviceFile&) = delete;
  PosixDeviceFile& operator=(const PosixDeviceFile&) = delete;

  int Ioctl(unsigned long request, void* arg) override {
    int rc;
    do {
      rc = ::ioctl(fd_, request, arg);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? errno : 0;
  }
  void* Map(size_t bytes, uint64_t offset, int* err) override {
    void* p =
        ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(offset));
    if (p == MAP_FAILED) {
      *err = errno;
      return nullptr;
    }
    return p;
  }
  int Unmap(void* addr, size_t bytes) override { return ::munmap(addr, bytes) < 0 ? errno : 0; }
  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

std::unique_ptr<DeviceFile> OpenDeviceFile(const std::string& path, int* err) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return nullptr;
  }
  return std::make_unique<PosixDeviceFile>(fd, path);
}

}  // namespace dmahil::agent::linux_xen
