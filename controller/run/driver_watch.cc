#include "controller/run/driver_watch.h"

#include <spdlog/spdlog.h>

namespace dmahil::controller {

DriverWatch::DriverWatch(AgentClient& dom0, std::string device)
    : dom0_(dom0), device_(std::move(device)) {
  try {
    direct_ = dom0_.WatchDevice(device_).dma_direct();
    on_ = true;
  } catch (const AgentError& e) {
    if (e.code() != grpc::StatusCode::UNIMPLEMENTED &&
        e.code() != grpc::StatusCode::FAILED_PRECONDITION)
      throw;
    why_not_ = e.what();
  }
}

DriverWatch::~DriverWatch() {
  if (!on_) return;
  try {
    dom0_.WatchDevice("");
  } catch (const std::exception& e) {
    spdlog::warn("stopping the DMA-API audit of {}: {}", device_, e.what());
  }
}

v1::DeviceOps DriverWatch::Take() { return dom0_.ReadDeviceOps(); }

}  // namespace dmahil::controller
