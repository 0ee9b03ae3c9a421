#include "controller/run/kinds/lab_kinds.h"

#include <fmt/format.h>

#include "common/host_port.h"
#include "controller/device/tcp_device_client.h"
#include "controller/device/usb_device_client.h"
#include "controller/lab/lab_error.h"
#include "controller/lab/qemu_power.h"

namespace dmahil::controller::kinds {
namespace fs = std::filesystem;
namespace {

/// TcpDeviceClient, connected at the first Transact.
class LazyTcpDeviceClient final : public DeviceClient {
 public:
  explicit LazyTcpDeviceClient(HostPort endpoint) : endpoint_(std::move(endpoint)) {}
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override {
    if (!client_) client_ = std::make_unique<TcpDeviceClient>(endpoint_.host, endpoint_.port);
    return client_->Transact(request);
  }

 private:
  HostPort endpoint_;
  std::unique_ptr<TcpDeviceClient> client_;
};

/// What both wired kinds share: the timeout and the agents come from the wiring.
class WiredKind : public BoardKind {
 public:
  explicit WiredKind(const LoadedBoard& board) : wiring_(board.entry.wiring()) {}
  uint32_t BootTimeoutMs() const override {
    return wiring_.boot_timeout_ms() != 0 ? wiring_.boot_timeout_ms() : kDefaultLabBootTimeoutMs;
  }
  AgentEndpoints Agents(const std::string&) override {
    return {wiring_.dom0_agent(), wiring_.guest_agent()};
  }

 protected:
  const v1::BoardWiring& wiring_;
};

/// A real board: libgpiod or pdudaemon power (lab::MakePowerSwitch), a Boost.Asio serial
/// console, the USB engine (libusb).
class HardwareKind final : public WiredKind {
 public:
  using WiredKind::WiredKind;
  BoardKindTraits traits() const override { return Traits(); }
  std::unique_ptr<lab::PowerSwitch> OpenPower(const fs::path& dir) override {
    return lab::MakePowerSwitch(wiring_.power(), dir);
  }
  std::unique_ptr<lab::SerialConsole> OpenConsole(const fs::path& log) override {
    return std::make_unique<lab::SerialConsole>(wiring_.console(), log);
  }
  std::unique_ptr<DeviceClient> OpenEngine() override {
    return MakeUsbDeviceClient(wiring_.engine());
  }
  static BoardKindTraits Traits() {
    BoardKindTraits t;
    t.name = "hardware";
    t.stale_lines_observable = true;
    t.shows_segments = true;
    return t;
  }
};

/// Real Xen and Linux under qemu-system-aarch64 (lab::QemuPowerSwitch); the engine is
/// dmahil.ko driving QEMU's edu device, served by the dom0 agent over TCP.
class QemuXenKind final : public WiredKind {
 public:
  using WiredKind::WiredKind;
  BoardKindTraits traits() const override { return Traits(); }
  std::unique_ptr<lab::PowerSwitch> OpenPower(const fs::path& dir) override {
    auto power = std::make_unique<lab::QemuPowerSwitch>(wiring_.power().qemu(), dir);
    qemu_ = power.get();
    return power;
  }
  std::unique_ptr<lab::SerialConsole> OpenConsole(const fs::path& log) override {
    if (qemu_ == nullptr)
      throw lab::LabError(
          "no console device (a qemu board's console comes with its qemu power, which did not "
          "open)");
    return qemu_->OpenConsole(wiring_.console(), log);
  }
  std::unique_ptr<DeviceClient> OpenEngine() override {
    return MakeLazyTcpDeviceClient(wiring_.engine_tcp());
  }
  bool EngineMayLagAgents() const override { return true; }
  static BoardKindTraits Traits() {
    BoardKindTraits t;
    t.name = "qemu-xen";
    t.stale_lines_observable = false;  // TCG models no caches
    t.shows_segments = true;
    return t;
  }

 private:
  lab::QemuPowerSwitch* qemu_ = nullptr;  // owned by the runner, which outlives our use
};

}  // namespace

std::unique_ptr<DeviceClient> MakeLazyTcpDeviceClient(const std::string& endpoint) {
  if (std::string why = HostPortProblem(endpoint); !why.empty())
    throw DeviceError(fmt::format("device {}: not host:port ({})", endpoint, why));
  return std::make_unique<LazyTcpDeviceClient>(ParseHostPort(endpoint));
}

BoardKindEntry HardwareKindEntry() {
  return {HardwareKind::Traits(), [](const LoadedBoard& board, const CampaignOptions&) {
            return std::make_unique<HardwareKind>(board);
          }};
}

BoardKindEntry QemuXenKindEntry() {
  return {QemuXenKind::Traits(), [](const LoadedBoard& board, const CampaignOptions&) {
            return std::make_unique<QemuXenKind>(board);
          }};
}

}  // namespace dmahil::controller::kinds
