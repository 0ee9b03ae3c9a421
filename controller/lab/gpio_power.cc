#include "controller/lab/gpio_power.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <set>
#include <thread>
#include <utility>

#include "controller/lab/lab_error.h"

namespace dmahil::lab {

namespace {

// An OutputLine on a requested gpiod::line. The chip is kept alive with the line.
class LibgpiodOutputLine final : public OutputLine {
 public:
  LibgpiodOutputLine(gpiod::chip chip, gpiod::line line, std::string name)
      : chip_(std::move(chip)), line_(std::move(line)), name_(std::move(name)) {}

  ~LibgpiodOutputLine() override {
    try {
      line_.release();
    } catch (const std::exception&) {  // nothing to do: the fd is closed with the chip
    }
  }

  void SetValue(int value) override {
    try {
      line_.set_value(value);
    } catch (const std::exception& e) {
      throw LabError(fmt::format("{}: cannot set value {}: {}", name_, value, e.what()));
    }
  }

 private:
  gpiod::chip chip_;
  gpiod::line line_;
  std::string name_;
};

std::string LineName(const std::string& chip, uint32_t offset) {
  return fmt::format("{} line {}", chip, offset);
}

}  // namespace

std::string DescribeLine(const v1::GpioLine& line) { return LineName(line.chip(), line.offset()); }

gpiod::line_request OutputRequest(const v1::GpioLine& line) {
  gpiod::line_request request;
  request.consumer = kGpioConsumer;
  request.request_type = gpiod::line_request::DIRECTION_OUTPUT;
  if (line.active_low()) request.flags |= gpiod::line_request::FLAG_ACTIVE_LOW;
  return request;
}

OutputLine::~OutputLine() = default;
GpioLines::~GpioLines() = default;

std::unique_ptr<OutputLine> LibgpiodLines::RequestOutput(const std::string& chip, uint32_t offset,
                                                         const gpiod::line_request& request,
                                                         int value) {
  const std::string name = LineName(chip, offset);
  auto it = chips_.find(chip);
  if (it == chips_.end()) {
    try {
      it = chips_.emplace(chip, gpiod::chip(chip, gpiod::chip::OPEN_LOOKUP)).first;
    } catch (const std::exception& e) {
      throw LabError(fmt::format("{}: cannot open the GPIO chip: {}", name, e.what()));
    }
  }
  const gpiod::chip& c = it->second;
  try {
    const unsigned int num_lines = c.num_lines();
    if (offset >= num_lines) {
      throw LabError(fmt::format("{}: offset beyond the chip ({} \"{}\" has lines 0..{})", name,
                                 c.name(), c.label(), num_lines == 0 ? 0 : num_lines - 1));
    }
    gpiod::line line = c.get_line(offset);
    if (line.is_used()) {
      throw LabError(fmt::format("{}: busy: already requested by \"{}\"", name, line.consumer()));
    }
    line.request(request, value);
    return std::make_unique<LibgpiodOutputLine>(c, std::move(line), name);
  } catch (const LabError&) {
    throw;
  } catch (const std::exception& e) {
    throw LabError(fmt::format("{}: cannot request as an output: {}", name, e.what()));
  }
}

namespace {

void CheckLine(const v1::GpioLine& line, const std::string& role,
               std::set<std::pair<std::string, uint32_t>>& seen) {
  if (line.chip().empty()) {
    throw LabError(fmt::format("gpio power: the {} line has no chip", role));
  }
  if (!seen.emplace(line.chip(), line.offset()).second) {
    throw LabError(fmt::format("gpio power: {}: used twice (the {} line repeats one)",
                               DescribeLine(line), role));
  }
}

}  // namespace

GpioPowerSwitch::GpioPowerSwitch(const v1::GpioPower& config, std::unique_ptr<GpioLines> lines)
    : config_(config),
      lines_(std::move(lines)),
      hold_(config.hold_ms()),
      settle_(config.settle_ms()) {
  if (!config_.has_power()) throw LabError("gpio power: no power line");
  std::set<std::pair<std::string, uint32_t>> seen;
  CheckLine(config_.power(), "power", seen);
  const bool has_reset = config_.has_reset() && !config_.reset().chip().empty();
  if (config_.has_reset() && !has_reset &&
      (config_.reset().offset() != 0 || config_.reset().active_low())) {
    throw LabError("gpio power: the reset line has an offset or active_low but no chip");
  }
  if (has_reset) CheckLine(config_.reset(), "reset", seen);
  for (const v1::GpioBootMode& strap : config_.boot_mode()) {
    CheckLine(strap.line(), "boot-mode", seen);
  }

  power_ = Request(config_.power(), false);
  if (has_reset) reset_ = Request(config_.reset(), false);
  for (const v1::GpioBootMode& strap : config_.boot_mode()) {
    straps_.push_back(Request(strap.line(), strap.asserted()));
    straps_.back().strap_level = strap.asserted();
  }
}

GpioPowerSwitch::~GpioPowerSwitch() = default;

GpioPowerSwitch::Line GpioPowerSwitch::Request(const v1::GpioLine& config, bool asserted) {
  Line line;
  line.config = config;
  line.out = lines_->RequestOutput(config.chip(), config.offset(), OutputRequest(config),
                                   asserted ? 1 : 0);
  line.asserted = asserted;
  return line;
}

void GpioPowerSwitch::Set(Line& line, bool asserted) {
  line.out->SetValue(asserted ? 1 : 0);
  line.asserted = asserted;
  std::this_thread::sleep_for(settle_);
}

void GpioPowerSwitch::SetStraps() {
  for (Line& strap : straps_) Set(strap, strap.strap_level);
}

void GpioPowerSwitch::On() {
  SetStraps();
  Set(power_, true);
}

void GpioPowerSwitch::Off() { Set(power_, false); }

void GpioPowerSwitch::Cycle() {
  const auto off_until = std::chrono::steady_clock::now() + std::max(hold_, settle_);
  power_.out->SetValue(0);
  power_.asserted = false;
  std::this_thread::sleep_until(off_until);
  On();
}

void GpioPowerSwitch::Reset() {
  if (!reset_) {
    Cycle();
    return;
  }
  SetStraps();
  const auto release_at = std::chrono::steady_clock::now() + std::max(hold_, settle_);
  reset_->out->SetValue(1);
  reset_->asserted = true;
  if (!power_.asserted) {
    std::this_thread::sleep_for(settle_);
    Set(power_, true);
  }
  std::this_thread::sleep_until(release_at);
  Set(*reset_, false);
}

std::string GpioPowerSwitch::Describe() const {
  std::string out = fmt::format("gpio power {}{}", DescribeLine(config_.power()),
                                config_.power().active_low() ? " (active-low)" : "");
  if (reset_) {
    out += fmt::format(", reset {}{}", DescribeLine(reset_->config),
                       reset_->config.active_low() ? " (active-low)" : "");
  }
  if (!straps_.empty()) {
    out += fmt::format(", {} boot-mode strap{}", straps_.size(), straps_.size() == 1 ? "" : "s");
  }
  out += fmt::format(", hold {} ms, settle {} ms", hold_.count(), settle_.count());
  return out;
}

namespace {

void ValidateGpioLine(const v1::GpioLine& line, const std::string& path, Problems& problems,
                      Claims& claims) {
  if (line.chip().empty()) {
    problems.Add(path, "{}.chip is empty; name the gpiochip (e.g. \"gpiochip0\")", path);
    return;
  }
  claims.Claim(problems, "GPIO line", fmt::format("{}:{}", line.chip(), line.offset()), path);
}

}  // namespace

void ValidateGpioPower(const v1::GpioPower& gpio, const std::string& path, Problems& problems,
                       Claims& claims) {
  if (!gpio.has_power())
    problems.Add(path, "{} needs power {{ chip offset }} (the relay's line)", path);
  else
    ValidateGpioLine(gpio.power(), path + ".power", problems, claims);
  if (gpio.has_reset() && !gpio.reset().chip().empty())
    ValidateGpioLine(gpio.reset(), path + ".reset", problems, claims);
  for (int i = 0; i < gpio.boot_mode_size(); ++i) {
    const std::string strap = fmt::format("{}.boot_mode[{}]", path, i);
    if (!gpio.boot_mode(i).has_line())
      problems.Add(strap, "{} needs line {{ chip offset }}", strap);
    else
      ValidateGpioLine(gpio.boot_mode(i).line(), strap + ".line", problems, claims);
  }
}

}  // namespace dmahil::lab
