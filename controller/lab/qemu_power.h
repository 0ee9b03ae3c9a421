// Power for the qemu-xen board (docs/architecture.md §9; lab.proto QemuPower): "on"
// starts qemu-system-aarch64 booting real Xen 4.17 with Debian's arm64 dom0 kernel and an
// initrd, "off" kills it. QEMU's serial port is the board's console: the switch makes a pty
// pair, hands QEMU the slave's path (-serial /dev/pts/N: QEMU's "tty" chardev, which
// QEMU's chardev/char.c picks for a "/dev/..." path) and serves the master to a
// SerialConsole. The command line is qemu/boot.sh's (qemu/README.md), plus the user
// network with host port forwards into dom0 and the `edu` PCI device as the DMA engine.
#pragma once

#include <sys/types.h>

#include <boost/process/child.hpp>
#include <boost/process/group.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/problems.h"
#include "controller/lab/child_process.h"
#include "controller/lab/power.h"
#include "controller/lab/serial_console.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::lab {

/// dom0's address on QEMU's user network (slirp gives the first DHCP client 10.0.2.15) and
/// the guest ports the QemuPower host ports forward to: the dom0 agent, the relay to the
/// domU's agent, the DMA engine (the device protocol, served by the dom0 agent).
inline constexpr const char* kQemuDom0Address = "10.0.2.15";
inline constexpr uint16_t kQemuDom0AgentGuestPort = 7000;
inline constexpr uint16_t kQemuGuestRelayGuestPort = 7001;
inline constexpr uint16_t kQemuEngineGuestPort = 7002;

/// QemuPower's defaults (lab.proto): MiB, MiB, CPUs, the edu mask.
inline constexpr uint32_t kQemuDefaultMemoryMib = 2048;
inline constexpr uint32_t kQemuDefaultDom0MemMib = 512;
inline constexpr uint32_t kQemuDefaultCpus = 2;
inline constexpr uint64_t kQemuDefaultEduDmaMask = ~uint64_t{0};

/// The images QEMU loads, resolved.
struct QemuImages {
  std::filesystem::path xen;     // -kernel (Xen's arm64 Image, started at EL2)
  std::filesystem::path kernel;  // dom0 kernel, -device guest-loader at 0x49000000
  std::filesystem::path initrd;  // dom0 initrd, -device guest-loader at 0x4d000000
  std::filesystem::path nvme;    // the NVMe disk's raw backing file; empty: no NVMe device
};

/// Reads a KEY=VALUE file (qemu/fetch.sh's fetch.env): '#' lines and blank lines are
/// skipped, values are taken as they are (no quotes, no expansion). Throws LabError naming
/// the file if it cannot be read or a line has no '='.
std::map<std::string, std::string> ReadEnvFile(const std::filesystem::path& file);

/// xen and kernel as given, else XEN= and KERNEL= of fetch_env; initrd as given. Paths are
/// used as they are (ResolveQemuPaths has resolved relative ones against the farm's folder). Throws
/// LabError naming what is missing: an unset image with no fetch_env to supply it, a
/// fetch_env without the key, or an image file that does not exist.
QemuImages ResolveQemuImages(const v1::QemuPower& power);

/// What a qemu-xen board boots, in words for its reports.
struct QemuSoftware {
  /// A kernel built from source (qemu/build-kernel.sh's kernel.env):
  ///   "Linux <describe> (tree <path>, commit <12 hex>, config <name> <sha12>, 4 KiB pages)";
  /// Debian's (qemu/fetch.sh's fetch.env): "Debian linux-image-<ABI> (<Image path>)"; a
  /// `kernel` field: its path.
  std::string kernel;
  /// "Xen <path> (sha256 <16 hex>)": Debian's or the user's own build (`xen` field or XEN=).
  std::string hypervisor;
};

/// The kernel and hypervisor `power` boots, from the same fields and env file
/// ResolveQemuImages reads. Never throws: what cannot be read says so in the string
/// ("unknown: <why>"), as the board's own start-up reports the error.
QemuSoftware DescribeQemuSoftware(const v1::QemuPower& power);

/// QEMU's arguments (without argv[0]) for one boot: `serial` is the -serial target (a pty
/// path); `dtb`, if not empty, is booted with -dtb; `dump_dtb`, if not empty, adds
/// dumpdtb=<it> to -machine (QEMU then writes its device tree and exits). Values inside
/// QEMU's comma-separated options have their commas doubled (QEMU's escape).
std::vector<std::string> QemuArgs(const v1::QemuPower& power, const QemuImages& images,
                                  const std::string& serial, const std::filesystem::path& dtb = {},
                                  const std::filesystem::path& dump_dtb = {});

/// One qemu-xen board's QEMU. Not thread-safe (one call at a time), like every PowerSwitch.
class QemuPowerSwitch final : public PowerSwitch {
 public:
  /// Bound on the DTB dump run (QEMU starts, writes the DTB and exits), ms.
  static constexpr uint32_t kDumpTimeoutMs = 60000;
  /// Lines of qemu.log quoted by Failure().
  static constexpr size_t kFailureLogLines = 20;

  /// Resolves the images (ResolveQemuImages), finds the QEMU binary (a path, or a name on
  /// PATH) and, for non_coherent, `fdtput` on PATH, and opens the console pty pair. `dir`
  /// (created) receives qemu.log (QEMU's stdout and stderr, appended, with a header per
  /// boot giving the command line) and, for non_coherent, virt.dtb. Throws LabError naming
  /// the missing file or program, or the failing openpty.
  QemuPowerSwitch(const v1::QemuPower& power, const std::filesystem::path& dir);
  /// Off(), errors ignored; closes the pty.
  ~QemuPowerSwitch() override;
  QemuPowerSwitch(const QemuPowerSwitch&) = delete;
  QemuPowerSwitch& operator=(const QemuPowerSwitch&) = delete;

  /// Starts QEMU unless it is running. non_coherent: first dumps the DTB and deletes
  /// `dma-coherent` from /pcie@10000000 (every power-on: the DTB holds the initrd's size).
  /// Throws LabError naming the step (DTB dump, fdtput, spawning QEMU) that failed.
  void On() override;
  /// Kills QEMU's process group (SIGKILL: a power cut, no shutdown) and reaps it.
  /// Idempotent; a QEMU that already exited is only reaped.
  void Off() override;
  /// Off(), On(): QEMU has no hold time.
  void Cycle() override;
  /// Cycle() (QEMU's `system_reset` would need the monitor, which is off).
  void Reset() override;
  /// "qemu-system-aarch64 (Xen <xen>, dom0 <kernel>, initrd <initrd>[, non-coherent])".
  std::string Describe() const override;
  /// "" while QEMU runs or before the first On(); once it has exited on its own: its exit
  /// status and the last kFailureLogLines lines of qemu.log.
  std::string Failure() override;

  /// A SerialConsole on (a duplicate of) the pty master: QEMU's serial port. Valid across
  /// power cycles: the switch keeps the slave open, so the master never reads EIO (hang-up)
  /// while QEMU is down. Throws LabError as SerialConsole does.
  std::unique_ptr<SerialConsole> OpenConsole(const v1::SerialConsole& config,
                                             const std::filesystem::path& log) const;

  /// The pty slave QEMU writes its serial port to, e.g. "/dev/pts/7".
  const std::string& serial_path() const { return pty_->slave_path(); }
  /// The arguments of the last QEMU started for a boot (not the DTB dump); empty before.
  const std::vector<std::string>& last_args() const { return last_args_; }
  /// QEMU's pid while it runs, else -1.
  pid_t pid();
  /// qemu.log, virt.dtb.
  std::filesystem::path log_path() const { return dir_ / "qemu.log"; }
  std::filesystem::path dtb_path() const { return dir_ / "virt.dtb"; }
  /// The NVMe disk's backing file (QemuPower.nvme_disk_mib != 0): what the device wrote,
  /// byte for byte at the namespace's byte offsets (raw, 512-byte LBAs).
  std::filesystem::path nvme_image_path() const { return dir_ / "nvme.img"; }

 private:
  void DumpDtb();                // non_coherent: virt.dtb without dma-coherent on /pcie@10000000
  void CreateNvmeImage() const;  // nvme_disk_mib: a fresh, empty (sparse) nvme.img
  void Log(const std::string& line) const;

  v1::QemuPower power_;
  QemuImages images_;
  std::filesystem::path qemu_;    // the binary, resolved
  std::filesystem::path fdtput_;  // resolved for non_coherent
  std::filesystem::path dir_;
  std::unique_ptr<PtyPair> pty_;  // the serial port: QEMU writes the slave
  std::vector<std::string> last_args_;
  std::unique_ptr<boost::process::group> group_;
  std::unique_ptr<boost::process::child> child_;
  std::optional<std::string> exited_;  // how the current child ended, once reaped
};

/// Checks a qemu-xen board's wiring `w` (its field path in the farm file `wiring_path`,
/// e.g. "board[0].wiring") whose power is qemu, against its board file `board`:
/// power.qemu needs an initrd, and xen and kernel unless a fetch_env gives them (the files
/// are build outputs, not checked here: opening the switch names any that is missing);
/// memory_mib 0 (2048) or 256..65536 with at least 128 MiB beyond dom0_mem_mib (0: 512);
/// cpus 0 (2) or 1..8; edu_dma_mask 0 or 2^n - 1. The machine QEMU boots must be the one
/// the board file describes: edu_dma_mask as wide as dma.mask_bits, non_coherent the
/// opposite of dma.coherent, memory_mib the board's RAM. The three host ports are 1..65535,
/// each claimed in `claims` as "host TCP port 127.0.0.1:<port>", and dom0_agent,
/// guest_agent and engine_tcp must be "127.0.0.1:<the matching port>" (QEMU's hostfwd
/// listens on the host loopback address). Adds each problem to `problems` (the farm's).
void ValidateQemuWiring(const v1::BoardWiring& w, const v1::Board& board,
                        const std::string& wiring_path, Problems& problems, Claims& claims);

/// Checks a qemu-xen board's console wiring (`path` its field path in the farm file): the
/// console is the pty QemuPowerSwitch::OpenConsole makes, so no device may be named; it
/// needs agent_ready (the ready line); and ValidateConsoleSettings. Adds each problem to
/// `problems` (the farm file's).
void ValidateQemuConsole(const v1::SerialConsole& console, const std::string& path,
                         Problems& problems);

/// Resolves `power`'s relative files (fetch_env, xen, kernel, initrd, and qemu when it is a
/// path, not a bare name looked up on PATH) against `dir`, the farm file's folder, as
/// every path in a farm file is.
void ResolveQemuPaths(v1::QemuPower& power, const std::filesystem::path& dir);

}  // namespace dmahil::lab
