// Watching the test disk's controller through dom0's agent for the span of one PV block
// fixture (agent.proto WatchDevice / ReadDeviceOps; dmahil.ko agent/kmod/dev_audit.c). What
// the records mean is driver_audit.h's job.
#pragma once

#include <string>

#include "controller/run/agent_client.h"
#include "dmahil/v1/agent.pb.h"

namespace dmahil::controller {

/// Watches one device's DMA-API traffic through dom0's agent for the span of one fixture.
/// Never throws from the destructor.
class DriverWatch {
 public:
  /// Starts watching `device` (TestDisk.controller). If dom0's agent cannot (UNIMPLEMENTED:
  /// no real devices or no ops to interpose on; FAILED_PRECONDITION: not dom0, no dmahil.ko,
  /// no such device, another watch) the watch is off and why_not() says why; other
  /// AgentErrors propagate.
  DriverWatch(AgentClient& dom0, std::string device);
  ~DriverWatch();
  DriverWatch(const DriverWatch&) = delete;
  DriverWatch& operator=(const DriverWatch&) = delete;

  bool on() const { return on_; }
  /// The device has no DMA-mapping ops (WatchDeviceResponse.dma_direct).
  bool direct() const { return direct_; }
  const std::string& why_not() const { return why_not_; }
  /// The ops since the last Take or the start (drained). Throws AgentError.
  v1::DeviceOps Take();

 private:
  AgentClient& dom0_;
  std::string device_;
  bool on_ = false;
  bool direct_ = false;
  std::string why_not_;
};

}  // namespace dmahil::controller
