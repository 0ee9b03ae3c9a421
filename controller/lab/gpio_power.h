// Board power through relays on GPIO lines (docs/architecture.md §10; lab.proto GpioPower):
// libgpiod 1.6's C++ API (<gpiod.hpp>). The sequencing (boot-mode straps, power, reset,
// hold and settle times) sits above a narrow seam, GpioLines/OutputLine, whose real
// implementation is LibgpiodLines; tests substitute a recording fake.
#pragma once

#include <chrono>
#include <cstdint>
#include <gpiod.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/problems.h"
#include "controller/lab/power.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::lab {

/// The consumer name the lines are requested with (shown by `gpioinfo`).
inline constexpr const char* kGpioConsumer = "dmahil";

/// "gpiochip3 line 17": how messages name a line.
std::string DescribeLine(const v1::GpioLine& line);

/// The request GpioPowerSwitch makes for `line`: DIRECTION_OUTPUT, consumer "dmahil",
/// and gpiod::line_request::FLAG_ACTIVE_LOW when line.active_low (the kernel then inverts
/// every value: 1 = asserted = driven low).
gpiod::line_request OutputRequest(const v1::GpioLine& line);

/// One GPIO line held as an output. Released when destroyed.
class OutputLine {
 public:
  virtual ~OutputLine();
  /// Sets the line's logical value (1: asserted, 0: deasserted); the request's
  /// FLAG_ACTIVE_LOW decides the electrical level. Throws LabError naming the line.
  virtual void SetValue(int value) = 0;
};

/// Requests GPIO lines as outputs: the seam under GpioPowerSwitch.
class GpioLines {
 public:
  virtual ~GpioLines();
  /// Requests line `offset` of `chip` (a name "gpiochip0", a path "/dev/gpiochip0", or a
  /// label, as libgpiod's OPEN_LOOKUP) with `request`, driven to logical `value` (0/1)
  /// at once. Throws LabError naming chip and line if the chip cannot be opened, the
  /// offset is beyond the chip, or the line is busy or cannot be requested.
  virtual std::unique_ptr<OutputLine> RequestOutput(const std::string& chip, uint32_t offset,
                                                    const gpiod::line_request& request,
                                                    int value) = 0;
};

/// GpioLines on the real libgpiod 1.6 character-device API. Chips are opened once and
/// kept while any of their lines is held. Opening never blocks.
class LibgpiodLines final : public GpioLines {
 public:
  std::unique_ptr<OutputLine> RequestOutput(const std::string& chip, uint32_t offset,
                                            const gpiod::line_request& request, int value) override;

 private:
  std::map<std::string, gpiod::chip> chips_;
};

/// PowerSwitch on GPIO relays (lab.proto GpioPower).
///
/// Construction requests every line as an output (consumer "dmahil", active_low through
/// FLAG_ACTIVE_LOW): power deasserted (the board is switched OFF), reset deasserted,
/// boot-mode straps at their `asserted` level; the lines stay held until destruction.
/// Every change is followed by settle_ms. Sequences (t = the time of the change):
///   On():    each boot-mode strap set, then power asserted.
///   Off():   power deasserted.
///   Cycle(): power deasserted; max(hold_ms, settle_ms) later, On() (so the power stays
///            off at least hold_ms).
///   Reset(): with a reset line: straps set, reset asserted, power asserted if it was off,
///            reset held at least max(hold_ms, settle_ms) from its assertion, reset
///            deasserted.
///            Without a reset line: Cycle().
/// Throws LabError naming the chip and line on any libgpiod error, and from the
/// constructor for a bad configuration (no power chip, a reset or boot-mode line without
/// a chip, one line used twice).
class GpioPowerSwitch final : public PowerSwitch {
 public:
  /// `lines` is the seam; the default is the real libgpiod.
  explicit GpioPowerSwitch(const v1::GpioPower& config,
                           std::unique_ptr<GpioLines> lines = std::make_unique<LibgpiodLines>());
  ~GpioPowerSwitch() override;

  GpioPowerSwitch(const GpioPowerSwitch&) = delete;
  GpioPowerSwitch& operator=(const GpioPowerSwitch&) = delete;

  void On() override;
  void Off() override;
  void Cycle() override;
  void Reset() override;
  /// e.g. "gpio power gpiochip3 line 17 (active-low), reset gpiochip3 line 18, 1 boot-mode
  /// strap, hold 500 ms, settle 100 ms".
  std::string Describe() const override;

 private:
  struct Line {
    v1::GpioLine config;
    std::unique_ptr<OutputLine> out;
    bool asserted = false;
    bool strap_level = false;  // boot-mode straps: the level to hold
  };

  Line Request(const v1::GpioLine& config, bool asserted);
  void Set(Line& line, bool asserted);  // sets, then waits settle_ms
  void SetStraps();

  v1::GpioPower config_;
  std::unique_ptr<GpioLines> lines_;
  std::chrono::milliseconds hold_;
  std::chrono::milliseconds settle_;
  Line power_;
  std::optional<Line> reset_;
  std::vector<Line> straps_;
};

/// Checks a farm's GPIO power wiring; `path` is its field path in the farm file (e.g.
/// "board[0].wiring.power.gpio"). Needs a power line; every line given (power, reset if it
/// names a chip, each boot-mode strap's, which is required) needs a chip, and is claimed
/// in `claims` as "GPIO line <chip>:<offset>" (two boards cannot drive one relay). Adds
/// each problem to `problems` (the farm file's), at the offending field.
void ValidateGpioPower(const v1::GpioPower& gpio, const std::string& path, Problems& problems,
                       Claims& claims);

}  // namespace dmahil::lab
