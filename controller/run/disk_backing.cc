#include "controller/run/disk_backing.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/pattern_fast.h"
#include "common/xen_page.h"
#include "firmware/host/codec.h"

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

std::string FileDiskBacking::Describe() const { return file_.string(); }

std::vector<v1::LineFinding> FileDiskBacking::Check(uint64_t offset, uint64_t length,
                                                    const pattern::Spec& spec) {
  const Fd fd(file_, O_RDONLY);
  std::string bytes(length, '\0');
  for (uint64_t done = 0; done < length;) {
    const ssize_t n =
        ::pread(fd.get(), bytes.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw DiskError(fmt::format("disk backing {}: read of {} bytes at {:#x}: {}", file_.string(),
                                  length, offset,
                                  n == 0 ? "past the end of the file" : std::strerror(errno)));
    done += static_cast<uint64_t>(n);
  }
  std::vector<v1::LineFinding> findings;
  pattern::FastCheck(
      spec, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
      [&](const pattern::Finding& f) { findings.push_back(device_host::FindingToProto(f)); });
  return findings;
}

void FileDiskBacking::Fill(uint64_t offset, uint64_t length, const pattern::Spec& spec) {
  std::string bytes(length, '\0');
  pattern::FastFill(spec, reinterpret_cast<uint8_t*>(bytes.data()), bytes.size());
  const Fd fd(file_, O_WRONLY);
  for (uint64_t done = 0; done < length;) {
    const ssize_t n =
        ::pwrite(fd.get(), bytes.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw DiskError(fmt::format("disk backing {}: write of {} bytes at {:#x}: {}", file_.string(),
                                  length, offset, std::strerror(errno)));
    done += static_cast<uint64_t>(n);
  }
}

std::string AgentDiskBacking::Describe() const {
  return fmt::format("{}, {}, through dom0's agent", device_, what_);
}

template <class Use>
void AgentDiskBacking::WithBuffer(uint64_t length, const pattern::Spec& spec, Use&& use) {
  const uint64_t at = uint64_t{spec.first_line} * spec.line_size;
  const uint64_t pages = (at + length + kXenPageSize - 1) / kXenPageSize;
  if (pages > 1024)
    throw DiskError(fmt::format("{}: {} bytes at buffer offset {:#x} need {} pages; at most 1024",
                                Describe(), length, at, pages));
  const uint32_t buffer =
      dom0_.AllocLocal(static_cast<uint32_t>(pages), v1::PLACEMENT_ANY).buffer();
  try {
    use(buffer, at);
  } catch (...) {
    try {
      dom0_.ReleaseBuffer(buffer);
    } catch (const std::exception& e) {
      spdlog::warn("{}: release of dom0 buffer {} failed: {}", Describe(), buffer, e.what());
    }
    throw;
  }
  dom0_.ReleaseBuffer(buffer);
}

std::vector<v1::LineFinding> AgentDiskBacking::Check(uint64_t offset, uint64_t length,
                                                     const pattern::Spec& spec) {
  std::vector<v1::LineFinding> findings;
  WithBuffer(length, spec, [&](uint32_t buffer, uint64_t at) {
    v1::BlockIoRequest read;
    read.set_buffer(buffer);
    read.set_offset(at);
    read.set_length(length);
    read.set_disk_offset(offset);
    read.set_op(v1::BLOCK_READ);
    dom0_.BlockIo(read);
    const v1::CheckSummary sum = dom0_.Verify(buffer, at, length, device_host::SpecToProto(spec),
                                              static_cast<uint32_t>(length / spec.line_size));
    findings.assign(sum.mismatches().begin(), sum.mismatches().end());
  });
  return findings;
}

void AgentDiskBacking::Fill(uint64_t offset, uint64_t length, const pattern::Spec& spec) {
  WithBuffer(length, spec, [&](uint32_t buffer, uint64_t at) {
    dom0_.Fill(buffer, at, length, device_host::SpecToProto(spec));
    v1::BlockIoRequest write;
    write.set_buffer(buffer);
    write.set_offset(at);
    write.set_length(length);
    write.set_disk_offset(offset);
    write.set_op(v1::BLOCK_WRITE);
    dom0_.BlockIo(write);
  });
}

DiskSide ChooseDiskSide(std::unique_ptr<DiskBacking> from_kind, const v1::Board& board,
                        AgentClient& dom0, const v1::AgentInfo& dom0_info) {
  DiskSide side;
  if (from_kind) {
    side.backing = std::move(from_kind);
    return side;
  }
  const std::string& serves = dom0_info.block_device();
  if (!board.has_test_disk()) {
    side.unseen =
        serves.empty()
            ? "the controller cannot see the device side of this board's disk: the board file "
              "names no test_disk (docs/lab-block-device.md) and the board kind has none"
            : fmt::format(
                  "dom0's agent serves {}, but the board file names no test_disk: add "
                  "test_disk {{ dom0_device: \"{}\" controller: ... driver: ... }} "
                  "(docs/lab-block-device.md)",
                  serves, serves);
    return side;
  }
  const v1::TestDisk& disk = board.test_disk();
  if (serves != disk.dom0_device()) {
    side.unseen = fmt::format(
        "the board file's test_disk is {}, but dom0's agent serves {}: start it with "
        "--block-device {} (docs/lab-block-device.md)",
        disk.dom0_device(), serves.empty() ? "no block device" : serves, disk.dom0_device());
    return side;
  }
  if (!dom0_info.block_signature().empty() && !disk.destructive()) {
    side.unseen = fmt::format(
        "{} carries a \"{}\" signature (dom0's agent, libblkid) and the board file's test_disk "
        "does not say destructive: true; the fixtures would destroy it",
        serves, dom0_info.block_signature());
    return side;
  }
  side.backing = std::make_unique<AgentDiskBacking>(
      dom0, serves, fmt::format("{} at {}", disk.driver(), disk.controller()));
  return side;
}

}  // namespace dmahil::controller
