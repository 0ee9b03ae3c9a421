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

/// The registry entry of the hardware board kind. Its rules: the board file gives ports,
/// dma.port, console, xen_support, l1 and cpus >= 1; the farm entry's wiring has relay or
/// PDU power (lab::ValidatePowerControl), a UART console (lab::ValidateSerialConsole), the
/// USB engine (ValidateUsbEngine; engine_tcp is refused), dom0_agent and guest_agent as
/// host:port or [ipv6]:port (port 1..65535, each endpoint used by one board only) and a
/// health_fixture, if named, that loads as a fixture (relative to the farm file).
BoardKindEntry HardwareKindEntry();

/// The registry entry of the qemu-xen board kind. Its rules: the farm entry's wiring has
/// power { qemu } (lab::ValidateQemuWiring: the machine QEMU boots must be the board
/// file's), QEMU's pty console (lab::ValidateQemuConsole), engine_tcp (a USB engine is
/// refused), the agents as for hardware and the health fixture; QemuPower's relative paths
/// are resolved against the farm file's folder (lab::ResolveQemuPaths).
BoardKindEntry QemuXenKindEntry();

}  // namespace dmahil::controller::kinds
