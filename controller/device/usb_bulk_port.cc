#include "controller/device/usb_bulk_port.h"

namespace dmahil::controller {

const char* UsbStatusName(UsbStatus status) {
  switch (status) {
    case UsbStatus::kOk:
      return "ok";
    case UsbStatus::kTimeout:
      return "timeout";
    case UsbStatus::kNoDevice:
      return "no-device";
    case UsbStatus::kPipe:
      return "pipe";
    case UsbStatus::kOverflow:
      return "overflow";
    case UsbStatus::kOther:
      return "other";
  }
  return "other";
}

}  // namespace dmahil::controller
