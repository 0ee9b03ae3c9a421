#include "controller/lab/power.h"

#include "controller/lab/gpio_power.h"
#include "controller/lab/lab_error.h"
#include "controller/lab/pdu_power.h"
#include "controller/lab/qemu_power.h"

namespace dmahil::lab {

PowerSwitch::~PowerSwitch() = default;

std::unique_ptr<PowerSwitch> MakePowerSwitch(const v1::PowerControl& control,
                                             const std::filesystem::path& dir) {
  switch (control.backend_case()) {
    case v1::PowerControl::kGpio:
      return std::make_unique<GpioPowerSwitch>(control.gpio());
    case v1::PowerControl::kPdu:
      return std::make_unique<PduPowerSwitch>(control.pdu());
    case v1::PowerControl::kQemu:
      if (dir.empty()) throw LabError("qemu power: no output folder for qemu.log");
      return std::make_unique<QemuPowerSwitch>(control.qemu(), dir);
    case v1::PowerControl::BACKEND_NOT_SET:
      break;
  }
  throw LabError("power control: no backend set (gpio, pdu or qemu)");
}

void ValidatePowerControl(const v1::PowerControl& power, const std::string& path,
                          Problems& problems, Claims& claims) {
  switch (power.backend_case()) {
    case v1::PowerControl::kGpio:
      ValidateGpioPower(power.gpio(), path + ".gpio", problems, claims);
      return;
    case v1::PowerControl::kPdu:
      ValidatePduPower(power.pdu(), path + ".pdu", problems, claims);
      return;
    case v1::PowerControl::kQemu:
      return;  // ValidateQemuWiring, with the rest of the wiring it must agree with
    case v1::PowerControl::BACKEND_NOT_SET:
      break;
  }
  problems.Add(path, "{} has no backend; set gpio {{ ... }} (relay) or pdu {{ ... }} (pdudaemon)",
               path);
}

}  // namespace dmahil::lab
