// GpioPowerSwitch: the sequencing above libgpiod through a recording fake of the
// GpioLines seam (order, timing, active-low levels), and the real libgpiod's error paths
// (this machine has no /dev/gpiochip*).
#include "controller/lab/gpio_power.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/problems.h"
#include "controller/lab/lab_error.h"
#include "controller/lab/power.h"
#include "dmahil/v1/farm.pb.h"

namespace dmahil::lab {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// What the fake saw: a request or a value change, with the electrical level the kernel
// would drive (FLAG_ACTIVE_LOW inverts the logical value, as the GPIO uAPI does).
struct Event {
  std::string line;  // "chip:offset"
  int level;         // electrical: 1 high, 0 low
  bool request;      // true: the line was requested (level = its initial level)
  Clock::time_point t;
};

struct Record {
  std::vector<Event> events;
  std::vector<gpiod::line_request> requests;
  std::vector<std::string> fail_chips;  // RequestOutput throws LabError for these chips
};

class FakeLine final : public OutputLine {
 public:
  FakeLine(Record* record, std::string name, bool active_low)
      : record_(record), name_(std::move(name)), active_low_(active_low) {}
  void SetValue(int value) override {
    record_->events.push_back({name_, Level(value), false, Clock::now()});
  }
  int Level(int value) const { return active_low_ ? (value == 0 ? 1 : 0) : value; }

 private:
  Record* record_;
  std::string name_;
  bool active_low_;
};

class FakeLines final : public GpioLines {
 public:
  explicit FakeLines(Record* record) : record_(record) {}
  std::unique_ptr<OutputLine> RequestOutput(const std::string& chip, uint32_t offset,
                                            const gpiod::line_request& request,
                                            int value) override {
    for (const std::string& bad : record_->fail_chips) {
      if (chip == bad) throw LabError(chip + " line " + std::to_string(offset) + ": busy");
    }
    record_->requests.push_back(request);
    const bool active_low = (request.flags & gpiod::line_request::FLAG_ACTIVE_LOW).any();
    auto line =
        std::make_unique<FakeLine>(record_, chip + ":" + std::to_string(offset), active_low);
    record_->events.push_back(
        {chip + ":" + std::to_string(offset), line->Level(value), true, Clock::now()});
    return line;
  }

 private:
  Record* record_;
};

v1::GpioLine Line(const std::string& chip, uint32_t offset, bool active_low = false) {
  v1::GpioLine line;
  line.set_chip(chip);
  line.set_offset(offset);
  line.set_active_low(active_low);
  return line;
}

// Power on gpiochip3:17 (active-low relay), reset on gpiochip3:18, one boot-mode strap on
// gpiochip4:2 held low (active-low, asserted), hold 80 ms, settle 20 ms.
v1::GpioPower Config(bool with_reset = true) {
  v1::GpioPower config;
  *config.mutable_power() = Line("gpiochip3", 17, true);
  if (with_reset) *config.mutable_reset() = Line("gpiochip3", 18);
  v1::GpioBootMode* strap = config.add_boot_mode();
  *strap->mutable_line() = Line("gpiochip4", 2, true);
  strap->set_asserted(true);
  config.set_hold_ms(80);
  config.set_settle_ms(20);
  return config;
}

long Ms(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<milliseconds>(d).count());
}

// Generous upper slack for a loaded 2-core machine; lower bounds are exact.
constexpr long kSlackMs = 400;

TEST(GpioPowerSwitchTest, RequestsOutputsAsDmahilWithActiveLowAndBoardOff) {
  Record rec;
  GpioPowerSwitch sw(Config(), std::make_unique<FakeLines>(&rec));
  ASSERT_EQ(rec.requests.size(), 3u);
  for (const gpiod::line_request& r : rec.requests) {
    EXPECT_EQ(r.consumer, "dmahil");
    EXPECT_EQ(r.request_type, gpiod::line_request::DIRECTION_OUTPUT);
  }
  EXPECT_EQ(rec.requests[0].flags, gpiod::line_request::FLAG_ACTIVE_LOW);  // power
  EXPECT_TRUE(rec.requests[1].flags.none());                               // reset
  EXPECT_EQ(rec.requests[2].flags, gpiod::line_request::FLAG_ACTIVE_LOW);  // strap
  ASSERT_EQ(rec.events.size(), 3u);
  // Power off: an active-low relay's line is driven high. Reset released (low). The strap,
  // asserted and active-low, low.
  EXPECT_EQ(rec.events[0].line, "gpiochip3:17");
  EXPECT_EQ(rec.events[0].level, 1);
  EXPECT_EQ(rec.events[1].line, "gpiochip3:18");
  EXPECT_EQ(rec.events[1].level, 0);
  EXPECT_EQ(rec.events[2].line, "gpiochip4:2");
  EXPECT_EQ(rec.events[2].level, 0);
  EXPECT_EQ(sw.Describe(),
            "gpio power gpiochip3 line 17 (active-low), reset gpiochip3 line 18, 1 boot-mode "
            "strap, hold 80 ms, settle 20 ms");
}

TEST(GpioPowerSwitchTest, OnSetsStrapsThenPowerAndSettles) {
  Record rec;
  GpioPowerSwitch sw(Config(), std::make_unique<FakeLines>(&rec));
  rec.events.clear();
  const Clock::time_point start = Clock::now();
  sw.On();
  const Clock::time_point end = Clock::now();
  ASSERT_EQ(rec.events.size(), 2u);
  EXPECT_EQ(rec.events[0].line, "gpiochip4:2");  // the strap first
  EXPECT_EQ(rec.events[0].level, 0);
  EXPECT_EQ(rec.events[1].line, "gpiochip3:17");  // then power: active-low, so on = low
  EXPECT_EQ(rec.events[1].level, 0);
  EXPECT_GE(Ms(rec.events[1].t - rec.events[0].t), 20);  // the strap settles
  EXPECT_GE(Ms(end - rec.events[1].t), 20);              // power settles before On returns
  EXPECT_LT(Ms(end - start), 40 + kSlackMs);

  rec.events.clear();
  sw.Off();
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events[0].line, "gpiochip3:17");
  EXPECT_EQ(rec.events[0].level, 1);
}

TEST(GpioPowerSwitchTest, CycleHoldsPowerOffThenTurnsOn) {
  Record rec;
  GpioPowerSwitch sw(Config(), std::make_unique<FakeLines>(&rec));
  sw.On();
  rec.events.clear();
  const Clock::time_point start = Clock::now();
  sw.Cycle();
  const Clock::time_point end = Clock::now();
  ASSERT_EQ(rec.events.size(), 3u);
  EXPECT_EQ(rec.events[0].line, "gpiochip3:17");
  EXPECT_EQ(rec.events[0].level, 1);  // off
  EXPECT_EQ(rec.events[1].line, "gpiochip4:2");
  EXPECT_EQ(rec.events[2].line, "gpiochip3:17");
  EXPECT_EQ(rec.events[2].level, 0);  // on
  const long off_ms = Ms(rec.events[2].t - rec.events[0].t);
  EXPECT_GE(off_ms, 80 + 20);  // hold, then the strap's settle
  EXPECT_LT(off_ms, 80 + 20 + kSlackMs);
  EXPECT_GE(Ms(rec.events[1].t - rec.events[0].t), 80);  // the whole hold before the strap
  EXPECT_GE(Ms(end - rec.events[2].t), 20);
  EXPECT_LT(Ms(end - start), 120 + kSlackMs);
}

TEST(GpioPowerSwitchTest, ResetPulsesTheResetLineAndLeavesPowerOn) {
  Record rec;
  GpioPowerSwitch sw(Config(), std::make_unique<FakeLines>(&rec));
  sw.On();
  rec.events.clear();
  sw.Reset();
  ASSERT_EQ(rec.events.size(), 3u);
  EXPECT_EQ(rec.events[0].line, "gpiochip4:2");   // straps before the reset
  EXPECT_EQ(rec.events[1].line, "gpiochip3:18");  // reset asserted: high (not active-low)
  EXPECT_EQ(rec.events[1].level, 1);
  EXPECT_EQ(rec.events[2].line, "gpiochip3:18");  // released
  EXPECT_EQ(rec.events[2].level, 0);
  const long held_ms = Ms(rec.events[2].t - rec.events[1].t);
  EXPECT_GE(held_ms, 80);
  EXPECT_LT(held_ms, 80 + kSlackMs);
  for (const Event& e : rec.events) EXPECT_NE(e.line, "gpiochip3:17") << "power touched";
}

TEST(GpioPowerSwitchTest, ResetOfAnOffBoardPowersItUpUnderReset) {
  Record rec;
  GpioPowerSwitch sw(Config(), std::make_unique<FakeLines>(&rec));
  rec.events.clear();
  sw.Reset();
  ASSERT_EQ(rec.events.size(), 4u);
  EXPECT_EQ(rec.events[1].line, "gpiochip3:18");
  EXPECT_EQ(rec.events[1].level, 1);  // reset held...
  EXPECT_EQ(rec.events[2].line, "gpiochip3:17");
  EXPECT_EQ(rec.events[2].level, 0);  // ...while power comes on...
  EXPECT_EQ(rec.events[3].line, "gpiochip3:18");
  EXPECT_EQ(rec.events[3].level, 0);  // ...then released
  EXPECT_GE(Ms(rec.events[3].t - rec.events[1].t), 80);
}

TEST(GpioPowerSwitchTest, ResetWithoutResetLineCycles) {
  Record rec;
  GpioPowerSwitch sw(Config(/*with_reset=*/false), std::make_unique<FakeLines>(&rec));
  EXPECT_EQ(rec.requests.size(), 2u);
  sw.On();
  rec.events.clear();
  sw.Reset();
  ASSERT_EQ(rec.events.size(), 3u);
  EXPECT_EQ(rec.events[0].line, "gpiochip3:17");
  EXPECT_EQ(rec.events[0].level, 1);
  EXPECT_EQ(rec.events[2].line, "gpiochip3:17");
  EXPECT_EQ(rec.events[2].level, 0);
  EXPECT_GE(Ms(rec.events[2].t - rec.events[0].t), 80);
}

TEST(GpioPowerSwitchTest, ActiveHighPowerDrivesHighWhenOn) {
  Record rec;
  v1::GpioPower config;
  *config.mutable_power() = Line("relays", 0);  // a chip by label
  GpioPowerSwitch sw(config, std::make_unique<FakeLines>(&rec));
  EXPECT_TRUE(rec.requests.at(0).flags.none());
  EXPECT_EQ(rec.events.at(0).level, 0);
  sw.On();
  EXPECT_EQ(rec.events.back().level, 1);
  sw.Off();
  EXPECT_EQ(rec.events.back().level, 0);
}

TEST(GpioPowerSwitchTest, BadConfigurationsAreLabErrors) {
  auto expect_error = [](const v1::GpioPower& config, const std::string& needle) {
    Record rec;
    try {
      GpioPowerSwitch sw(config, std::make_unique<FakeLines>(&rec));
      ADD_FAILURE() << "no error, expected: " << needle;
    } catch (const LabError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_TRUE(rec.requests.empty()) << "requested lines despite a bad configuration";
  };
  expect_error(v1::GpioPower(), "no power line");
  v1::GpioPower no_chip;
  no_chip.mutable_power()->set_offset(3);
  expect_error(no_chip, "the power line has no chip");
  v1::GpioPower twice = Config();
  *twice.mutable_reset() = Line("gpiochip3", 17);
  expect_error(twice, "gpiochip3 line 17: used twice");
  v1::GpioPower strap_no_chip = Config();
  strap_no_chip.add_boot_mode()->set_asserted(true);
  expect_error(strap_no_chip, "the boot-mode line has no chip");
  v1::GpioPower reset_no_chip = Config(false);
  reset_no_chip.mutable_reset()->set_offset(4);
  expect_error(reset_no_chip, "reset line has an offset or active_low but no chip");
}

TEST(GpioPowerSwitchTest, AFailedRequestIsPropagated) {
  Record rec;
  rec.fail_chips = {"gpiochip4"};
  try {
    GpioPowerSwitch sw(Config(), std::make_unique<FakeLines>(&rec));
    FAIL() << "no error";
  } catch (const LabError& e) {
    EXPECT_STREQ(e.what(), "gpiochip4 line 2: busy");
  }
}

// The real libgpiod: no GPIO chips exist on this machine.
TEST(LibgpiodLinesTest, MissingChipIsAQuickLabErrorNamingChipAndLine) {
  v1::PowerControl control;
  *control.mutable_gpio()->mutable_power() = Line("gpiochip-dmahil-missing", 17);
  const Clock::time_point start = Clock::now();
  try {
    MakePowerSwitch(control);
    FAIL() << "no error";
  } catch (const LabError& e) {
    EXPECT_NE(
        std::string(e.what()).find("gpiochip-dmahil-missing line 17: cannot open the GPIO chip"),
        std::string::npos)
        << e.what();
  }
  EXPECT_LT(Ms(Clock::now() - start), 1000);
}

TEST(LibgpiodLinesTest, MissingChipPathAndNotAGpioChipAreLabErrors) {
  LibgpiodLines lines;
  for (const std::string chip : {"/dev/gpiochip97", "/dev/null"}) {
    const Clock::time_point start = Clock::now();
    try {
      lines.RequestOutput(chip, 3, OutputRequest(Line(chip, 3)), 0);
      ADD_FAILURE() << "no error for " << chip;
    } catch (const LabError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(chip + " line 3: ", 0), 0u) << e.what();
    }
    EXPECT_LT(Ms(Clock::now() - start), 1000);
  }
}

TEST(OutputRequestTest, FlagsFollowActiveLow) {
  const gpiod::line_request low = OutputRequest(Line("gpiochip0", 1, true));
  EXPECT_EQ(low.consumer, "dmahil");
  EXPECT_EQ(low.request_type, gpiod::line_request::DIRECTION_OUTPUT);
  EXPECT_EQ(low.flags, gpiod::line_request::FLAG_ACTIVE_LOW);
  EXPECT_TRUE(OutputRequest(Line("gpiochip0", 1, false)).flags.none());
}

TEST(MakePowerSwitchTest, NoBackendIsALabError) {
  EXPECT_THROW(MakePowerSwitch(v1::PowerControl()), LabError);
}

// ---- The wiring GpioPowerSwitch is built from (ValidateGpioPower, ValidatePowerControl) ----

TEST(GpioPowerWiring, EveryLineNeedsAChipAndDrivesOneBoardOnly) {
  const std::string text = R"(name: "lab"
board {
  name: "a"
  wiring { power { gpio { power { chip: "gpiochip0" offset: 17 } boot_mode { asserted: true } } } }
}
board {
  name: "b"
  wiring { power { gpio { reset { chip: "gpiochip0" offset: 17 } } } }
}
board { name: "c" wiring { power { } } }
)";
  v1::Farm farm;
  SourceMap source;
  ParseTextProto(text, "lab.textproto", farm, &source);
  Problems problems(source);
  Claims claims(source);
  for (int i = 0; i < farm.board_size(); ++i)
    ValidatePowerControl(farm.board(i).wiring().power(),
                         "board[" + std::to_string(i) + "].wiring.power", problems, claims);
  EXPECT_EQ(problems.Text(),
            "lab.textproto:4:66: board[0].wiring.power.gpio.boot_mode[0] needs line { chip "
            "offset }\n"
            "lab.textproto:8:20: board[1].wiring.power.gpio needs power { chip offset } (the "
            "relay's line)\n"
            "lab.textproto:8:27: GPIO line gpiochip0:17 is already used by "
            "board[0].wiring.power.gpio.power at lab.textproto:4:27\n"
            "lab.textproto:10:28: board[2].wiring.power has no backend; set gpio { ... } "
            "(relay) or pdu { ... } (pdudaemon)");
}

}  // namespace
}  // namespace dmahil::lab
