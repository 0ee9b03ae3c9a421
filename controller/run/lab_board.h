// Real boards (BOARD_KIND_HARDWARE, DESIGN §8, issue 5): the relay, UART and USB DMA
// engine named by the farm's wiring (proto/dmahil/v1/lab.proto), a health check before
// the fixtures, and the fixtures run exactly as on a virtual board (fixture_runner.h).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/validate.h"
#include "controller/device/device_client.h"
#include "controller/lab/power.h"
#include "controller/lab/serial_console.h"
#include "controller/run/campaign.h"
#include "dmahil/v1/lab.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// Opens one board's lab hardware from its wiring. Each call throws (LabError,
/// DeviceError) with a message naming the resource when it is missing or unusable. The
/// seam lets tests put a virtual twin behind the same runner.
class LabOpener {
 public:
  virtual ~LabOpener() = default;
  /// `dir` is the board's output folder (<out>/<board>): QEMU's log and DTB go there.
  virtual std::unique_ptr<lab::PowerSwitch> OpenPower(const v1::PowerControl& power,
                                                      const std::filesystem::path& dir) = 0;
  /// `power` is the switch OpenPower gave (null if it failed): a qemu board's console is
  /// the pty its QemuPowerSwitch made.
  virtual std::unique_ptr<lab::SerialConsole> OpenConsole(const v1::SerialConsole& console,
                                                          const std::filesystem::path& log,
                                                          lab::PowerSwitch* power) = 0;
  /// The wiring's engine: `engine` (USB) or `engine_tcp` (host:port).
  virtual std::unique_ptr<DeviceClient> OpenEngine(const v1::BoardWiring& wiring) = 0;
};

/// The real hardware: libgpiod, pdudaemon or QEMU (lab::MakePowerSwitch), Boost.Asio
/// serial_port (lab::SerialConsole) or QEMU's pty (lab::QemuPowerSwitch::OpenConsole),
/// libusb (MakeUsbDeviceClient) or TCP (MakeLazyTcpDeviceClient).
class RealLabOpener final : public LabOpener {
 public:
  std::unique_ptr<lab::PowerSwitch> OpenPower(const v1::PowerControl& power,
                                              const std::filesystem::path& dir) override;
  std::unique_ptr<lab::SerialConsole> OpenConsole(const v1::SerialConsole& console,
                                                  const std::filesystem::path& log,
                                                  lab::PowerSwitch* power) override;
  std::unique_ptr<DeviceClient> OpenEngine(const v1::BoardWiring& wiring) override;
};

/// A TcpDeviceClient to `endpoint` ("host:port" or "[ipv6]:port") that connects at its
/// first Transact, not when made: a qemu board's engine only listens once dom0 is up.
/// Throws DeviceError naming the endpoint if it is not host:port.
std::unique_ptr<DeviceClient> MakeLazyTcpDeviceClient(const std::string& endpoint);

/// Lines of <out>/<board>/console.log quoted in a health-check error.
inline constexpr size_t kConsoleTailLines = 40;

/// Boot timeout of a wired board when its wiring gives none, ms.
inline constexpr uint32_t kDefaultLabBootTimeoutMs = 120000;

/// Runs every fixture of `farm` on the wired board `board` (BOARD_KIND_HARDWARE, or
/// BOARD_KIND_QEMU_XEN whose "power" is QEMU; its entry has wiring):
///  1. opens the power switch, the console (logged to <out>/<board>/console.log) and the
///     engine; every one that fails is named, so a farm with a missing GPIO chip, tty and
///     USB engine says all three at once;
///  2. the health check: power-cycle, the console shows wiring.console.agent_ready within
///     the boot timeout (a kernel or Xen crash ends the wait with its excerpt, and so does
///     a QEMU that exits: PowerSwitch::Failure), both agents answer and the engine answers
///     Info within what is left of it (a TCP engine is retried until then), and the
///     known-good fixture (board.health_fixture, else the farm's first) passes; a failure
///     here quotes the last kConsoleTailLines lines of console.log;
///  3. the fixtures, in farm order; after each, a console crash ends that fixture as an
///     infrastructure error with the excerpt, and the rest are not attempted;
///  4. power off (also on every error path; for QEMU the switch's destructor kills it too).
/// A board that fails 1 or 2 is offline for this run: every fixture is VERDICT_ERROR with
/// "board offline: ..." and the reason; it never produces a FAIL. Never throws.
std::vector<v1::FixtureResult> RunLabBoard(const LoadedFarm& farm, const LoadedBoard& board,
                                           const CampaignOptions& options, LabOpener& opener);

}  // namespace dmahil::controller
