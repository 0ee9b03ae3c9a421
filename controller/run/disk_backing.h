// The device side of a board's PV disk (docs/architecture.md §14): the disk as the storage
// device holds it, checked and written by the controller without the domU, so a PV block
// fixture can tell what the device took from memory (after the domU's write) and decide
// what the device will put into memory (before the domU's read). Two implementations:
// the backing file of an emulated disk on the controller's host (qemu-xen), and dom0's
// agent reading and writing the physical disk behind the PV disk (any board).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/pattern.h"
#include "controller/run/agent_client.h"
#include "dmahil/v1/agent.pb.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/pattern.pb.h"

namespace dmahil::controller {

/// The device side of the disk could not be read or written. what() names the backing
/// and the operation.
class DiskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A disk as the device holds it. Byte offsets are the disk's (the namespace's LBA x its
/// sector size); offset and length are whole sectors and whole lines of `spec`. Not
/// thread-safe: one fixture runner uses it.
class DiskBacking {
 public:
  virtual ~DiskBacking();
  /// What the backing is, for messages (e.g. the file's path).
  virtual std::string Describe() const = 0;
  /// Checks `length` bytes at `offset` against lines spec.first_line, ... of `spec`;
  /// returns every line that is not as expected (LineFinding.line: spec.first_line + k).
  /// Throws DiskError (or AgentError) when the bytes cannot be read.
  virtual std::vector<v1::LineFinding> Check(uint64_t offset, uint64_t length,
                                             const pattern::Spec& spec) = 0;
  /// Writes lines spec.first_line, ... of `spec` to `length` bytes at `offset`, visible to
  /// the device's next read. Throws DiskError (or AgentError).
  virtual void Fill(uint64_t offset, uint64_t length, const pattern::Spec& spec) = 0;
};

/// A raw image file on the controller's host that the device emulator reads and writes
/// through the host's page cache (QEMU's default cache=writeback for a raw -drive): the
/// qemu-xen board's nvme.img (lab::QemuPowerSwitch::nvme_image_path). The file is opened
/// at each call, so a board that recreates it at power-on needs no reopening.
class FileDiskBacking final : public DiskBacking {
 public:
  explicit FileDiskBacking(std::filesystem::path file) : file_(std::move(file)) {}
  std::string Describe() const override;
  std::vector<v1::LineFinding> Check(uint64_t offset, uint64_t length,
                                     const pattern::Spec& spec) override;
  void Fill(uint64_t offset, uint64_t length, const pattern::Spec& spec) override;

 private:
  std::filesystem::path file_;
};

/// The physical disk behind the domU's PV disk, through dom0's agent (its --block-device,
/// AgentInfo.block_device): a dom0 buffer of its own pages (AllocLocal) moved with O_DIRECT
/// BlockIo and checked with Verify or written after Fill. Dom0's own I/O goes through the
/// same driver with local pages: a lab board's way to see the device side (a bug that
/// hits dom0's pages as well shows on both sides and is reported on the write path).
/// At most 4 MiB (1024 pages) per call, placed in the buffer at the offset of
/// spec.first_line's line, as the agent's Verify and Fill want.
class AgentDiskBacking final : public DiskBacking {
 public:
  /// `dom0`: the dom0 agent, which must outlive this; `device`: its block device's path;
  /// `what`: the controller and driver behind it for messages ("nvme at 0000:00:03.0").
  AgentDiskBacking(AgentClient& dom0, std::string device, std::string what)
      : dom0_(dom0), device_(std::move(device)), what_(std::move(what)) {}
  std::string Describe() const override;
  std::vector<v1::LineFinding> Check(uint64_t offset, uint64_t length,
                                     const pattern::Spec& spec) override;
  void Fill(uint64_t offset, uint64_t length, const pattern::Spec& spec) override;

 private:
  /// Runs `use(buffer, at)` on a fresh dom0 buffer holding [at, at + length); releases it.
  template <class Use>
  void WithBuffer(uint64_t length, const pattern::Spec& spec, Use&& use);

  AgentClient& dom0_;
  std::string device_;
  std::string what_;
};

/// The device side of one board's PV disk, or why the controller has none.
struct DiskSide {
  std::unique_ptr<DiskBacking> backing;  // null: see `unseen`
  std::string unseen;                    // why there is no backing: the fixtures' n/a reason
};

/// Chooses the device side of the domU's PV disk (docs/architecture.md §14,
/// docs/lab-block-device.md): `from_kind` (BoardKind::OpenDiskBacking, an emulated disk's
/// file) if not null; else dom0's agent on the board file's test_disk, when dom0's agent
/// (`dom0_info`, from GetInfo) serves exactly test_disk.dom0_device and, if that carries a
/// signature (AgentInfo.block_signature), the board file says destructive: true. Otherwise
/// no backing, with the reason naming the field or agent option to set. Never throws.
DiskSide ChooseDiskSide(std::unique_ptr<DiskBacking> from_kind, const v1::Board& board,
                        AgentClient& dom0, const v1::AgentInfo& dom0_info);

}  // namespace dmahil::controller
