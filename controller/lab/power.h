// Board power (docs/architecture.md §4, §9, §10): one interface over the backends of
// proto/dmahil/v1/lab.proto PowerControl: relays on GPIO lines (GpioPowerSwitch,
// gpio_power.h), pdudaemon's HTTP API (PduPowerSwitch, pdu_power.h) and, for the qemu-xen
// board, a qemu-system-aarch64 process (QemuPowerSwitch, qemu_power.h).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/problems.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::lab {

/// Switches one board's power. Every method blocks until the change is made (and, for
/// GPIO, has settled) and throws LabError naming the resource when it cannot be made.
/// Not thread-safe: one call at a time.
class PowerSwitch {
 public:
  virtual ~PowerSwitch();

  /// Powers the board on (boot-mode straps first, where the backend has them).
  virtual void On() = 0;
  /// Powers the board off.
  virtual void Off() = 0;
  /// Off, hold (the backend's off time: GpioPower.hold_ms, PduPower.delay_s), on.
  virtual void Cycle() = 0;
  /// Pulses the reset line if the backend has one, else Cycle().
  virtual void Reset() = 0;
  /// One line for logs and errors, e.g. "gpio power gpiochip3 line 17 (active-low)" or
  /// "pdudaemon http://127.0.0.1:16421 pdu lab-pdu port 3".
  virtual std::string Describe() const = 0;
  /// Why a board that should be on cannot be running, or "": QEMU exited on its own (its
  /// status and stderr). Relays and PDUs cannot tell, so they always return "".
  virtual std::string Failure() { return {}; }
};

/// Builds the switch `control` selects: GpioPowerSwitch on the real libgpiod lines,
/// PduPowerSwitch with its default timeout, or QemuPowerSwitch writing its qemu.log (and
/// DTB) into `dir` (the board's output folder; required for qemu). Throws LabError when no
/// backend is set or its configuration is invalid, (GPIO) when a chip or line cannot be
/// opened or requested, and (qemu) when an image or program is missing.
std::unique_ptr<PowerSwitch> MakePowerSwitch(const v1::PowerControl& control,
                                             const std::filesystem::path& dir = {});

/// Checks a farm's relay or PDU power wiring as MakePowerSwitch would use it; `path` is its
/// field path in the farm file (e.g. "board[0].wiring.power"): gpio by ValidateGpioPower,
/// pdu by ValidatePduPower; no backend is a problem at `path`. qemu is not checked here: it
/// must agree with the rest of the wiring (ValidateQemuWiring, qemu_power.h). Adds each
/// problem to `problems` (the farm file's) and claims the lines and outlets in `claims`.
void ValidatePowerControl(const v1::PowerControl& power, const std::string& path,
                          Problems& problems, Claims& claims);

}  // namespace dmahil::lab
