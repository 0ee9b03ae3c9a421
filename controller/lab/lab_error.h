// Errors of the lab hardware layer (docs/architecture.md §10): power switches (GPIO relays,
// pdudaemon), serial consoles. A LabError is an infrastructure error, never a test
// failure.
#pragma once

#include <stdexcept>

namespace dmahil::lab {

/// A lab resource could not be configured, opened or driven. The message always names
/// the resource first, e.g. "gpiochip3 line 17: ...", "/dev/ttyUSB4: ...",
/// "pdudaemon http://127.0.0.1:16421 pdu lab-pdu port 3: ...".
class LabError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace dmahil::lab
