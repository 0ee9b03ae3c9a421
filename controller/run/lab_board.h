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
  virtual std::unique_ptr<lab::PowerSwitch> OpenPower(const v1::PowerControl& power) = 0;
  virtual std::unique_ptr<lab::SerialConsole> OpenConsole(const v1::SerialConsole& console,
                                                          const std::filesystem::path& log) = 0;
  virtual std::unique_ptr<DeviceClient> OpenEngine(const v1::UsbEngine& engine) = 0;
};

/// The real hardware: libgpiod or pdudaemon (lab::MakePowerSwitch), Boost.Asio
/// serial_port (lab::SerialConsole), libusb (MakeUsbDeviceClient).
class RealLabOpener final : public LabOpener {
 public:
  std::unique_ptr<lab::PowerSwitch> OpenPower(const v1::PowerControl& power) override;
  std::unique_ptr<lab::SerialConsole> OpenConsole(const v1::SerialConsole& console,
                                                  const std::filesystem::path& log) override;
  std::unique_ptr<DeviceClient> OpenEngine(const v1::UsbEngine& engine) override;
};

/// Boot timeout of a wired board when its wiring gives none, ms.
inline constexpr uint32_t kDefaultLabBootTimeoutMs = 120000;

/// Runs every fixture of `farm` on the hardware board `board` (its entry has wiring):
///  1. opens the power switch, the console (logged to <out>/<board>/console.log) and the
///     engine; every one that fails is named, so a farm with a missing GPIO chip, tty and
///     USB engine says all three at once;
///  2. the health check: power-cycle, the console shows wiring.console.agent_ready within
///     the boot timeout (a kernel or Xen crash ends the wait with its excerpt), both agents
///     answer, the engine answers Info, and the known-good fixture (board.health_fixture,
///     else the farm's first) passes;
///  3. the fixtures, in farm order; after each, a console crash ends that fixture as an
///     infrastructure error with the excerpt, and the rest are not attempted;
///  4. power off.
/// A board that fails 1 or 2 is offline for this run: every fixture is VERDICT_ERROR with
/// "board offline: ..." and the reason; it never produces a FAIL. Never throws.
std::vector<v1::FixtureResult> RunLabBoard(const LoadedFarm& farm, const LoadedBoard& board,
                                           const CampaignOptions& options, LabOpener& opener);

}  // namespace dmahil::controller
