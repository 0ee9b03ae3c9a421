// The wired board kinds (docs/architecture.md §4, §9, §10): a hardware board (relay or PDU
// power, UART console, USB DMA engine) and the qemu-xen board (QEMU is its power, QEMU's
// serial port on a pty its console, the engine and agents behind QEMU's port forwards). Both
// take everything from the farm's wiring (proto/dmahil/v1/lab.proto BoardWiring).
#pragma once

#include <memory>
#include <string>

#include "controller/device/device_client.h"
#include "controller/run/board_kind.h"

namespace dmahil::controller::kinds {

/// Boot timeout of a wired board when its wiring gives none, ms.
inline constexpr uint32_t kDefaultLabBootTimeoutMs = 120000;

/// A TcpDeviceClient to `endpoint` ("host:port" or "[ipv6]:port") that connects at its
/// first Transact, not when made: a qemu board's engine only listens once dom0 is up.
/// Throws DeviceError naming the endpoint if it is not host:port.
std::unique_ptr<DeviceClient> MakeLazyTcpDeviceClient(const std::string& endpoint);

/// The registry entries of BOARD_KIND_HARDWARE and BOARD_KIND_QEMU_XEN.
BoardKindEntry HardwareKindEntry();
BoardKindEntry QemuXenKindEntry();

}  // namespace dmahil::controller::kinds
