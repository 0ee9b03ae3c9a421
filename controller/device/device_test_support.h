// Tests only: what the device-client tests (TCP and USB transports) share.
#pragma once

#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

#include "controller/device/device_client.h"
#include "dmahil/v1/pattern.pb.h"

namespace dmahil::controller::device_testing {

/// A valid pattern: seed 5, buffer 2, generation 1, 64-byte lines.
inline v1::PatternSpec Spec() {
  v1::PatternSpec s;
  s.set_seed(5);
  s.set_buffer_id(2);
  s.set_generation(1);
  s.set_line_size(64);
  return s;
}

/// Expects `f` to throw DeviceError whose message contains every string of `parts`.
template <typename F>
void ExpectDeviceError(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no DeviceError";
  } catch (const DeviceError& e) {
    for (const std::string& p : parts) {
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << " / " << p;
    }
  }
}

}  // namespace dmahil::controller::device_testing
