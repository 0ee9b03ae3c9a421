#include "controller/run/lab_board.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "controller/device/tcp_device_client.h"
#include "controller/device/usb_device_client.h"
#include "controller/device/window_guard.h"
#include "controller/lab/lab_error.h"
#include "controller/lab/log_tail.h"
#include "controller/lab/qemu_power.h"
#include "controller/report/names.h"
#include "controller/run/agent_client.h"
#include "controller/run/fixture_runner.h"

namespace dmahil::controller {
namespace {

std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (const std::string& p : parts) s += (s.empty() ? "" : "; ") + p;
  return s;
}

/// What the console says about a crash, or "" if none.
std::string CrashReport(const lab::SerialConsole& console) {
  const auto crash = console.crash();
  if (!crash) return "";
  return fmt::format("console: {}\n{}", crash->Summary(), crash->FormatExcerpt());
}

/// TcpDeviceClient, connected at the first Transact.
class LazyTcpDeviceClient final : public DeviceClient {
 public:
  LazyTcpDeviceClient(std::string host, uint16_t port) : host_(std::move(host)), port_(port) {}
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override {
    if (!client_) client_ = std::make_unique<TcpDeviceClient>(host_, port_);
    return client_->Transact(request);
  }

 private:
  std::string host_;
  uint16_t port_;
  std::unique_ptr<TcpDeviceClient> client_;
};

}  // namespace

std::unique_ptr<DeviceClient> MakeLazyTcpDeviceClient(const std::string& endpoint) {
  std::string host;
  std::string port;
  if (!endpoint.empty() && endpoint.front() == '[') {
    const size_t close = endpoint.find(']');
    if (close != std::string::npos && close + 1 < endpoint.size() && endpoint[close + 1] == ':') {
      host = endpoint.substr(1, close - 1);
      port = endpoint.substr(close + 2);
    }
  } else if (const size_t colon = endpoint.rfind(':'); colon != std::string::npos) {
    host = endpoint.substr(0, colon);
    port = endpoint.substr(colon + 1);
  }
  unsigned long n = 0;
  try {
    n = port.empty() ? 0 : std::stoul(port);
  } catch (const std::exception&) {
    n = 0;
  }
  if (host.empty() || n < 1 || n > 65535)
    throw DeviceError(fmt::format("device {}: not host:port", endpoint));
  return std::make_unique<LazyTcpDeviceClient>(host, static_cast<uint16_t>(n));
}

std::unique_ptr<lab::PowerSwitch> RealLabOpener::OpenPower(const v1::PowerControl& power,
                                                           const std::filesystem::path& dir) {
  return lab::MakePowerSwitch(power, dir);
}

std::unique_ptr<lab::SerialConsole> RealLabOpener::OpenConsole(const v1::SerialConsole& console,
                                                               const std::filesystem::path& log,
                                                               lab::PowerSwitch* power) {
  if (auto* qemu = dynamic_cast<lab::QemuPowerSwitch*>(power))
    return qemu->OpenConsole(console, log);
  if (console.device().empty())
    throw lab::LabError(
        "no console device (a qemu board's console comes with its qemu power, "
        "which did not open)");
  return std::make_unique<lab::SerialConsole>(console, log);
}

std::unique_ptr<DeviceClient> RealLabOpener::OpenEngine(const v1::BoardWiring& wiring) {
  if (wiring.engine_link_case() == v1::BoardWiring::kEngineTcp)
    return MakeLazyTcpDeviceClient(wiring.engine_tcp());
  return MakeUsbDeviceClient(wiring.engine());
}

std::vector<v1::FixtureResult> RunLabBoard(const LoadedFarm& farm, const LoadedBoard& lb,
                                           const CampaignOptions& opt, LabOpener& opener) {
  const std::string& name = lb.entry.name();
  const v1::BoardWiring& w = lb.entry.wiring();
  const uint32_t boot_ms =
      w.boot_timeout_ms() != 0 ? w.boot_timeout_ms() : kDefaultLabBootTimeoutMs;
  const uint64_t seed = BoardSeed(opt.seed, name);
  const auto offline = [&](const std::string& why) {
    spdlog::warn("{}: offline for this run: {}", name, why);
    return AllError(farm, name, "board offline: " + why);
  };

  if (farm.fixtures.empty() && !lb.health_fixture) return {};  // nothing to run, nothing to check

  // 1. Every resource, each failure named: one run tells the lab everything that is wrong.
  std::unique_ptr<lab::PowerSwitch> power;
  std::unique_ptr<lab::SerialConsole> console;
  std::unique_ptr<DeviceClient> engine;
  std::vector<std::string> missing;
  const std::filesystem::path dir = opt.out_dir / name;
  try {
    std::filesystem::create_directories(dir);
  } catch (const std::exception& e) {
    return offline(e.what());
  }
  try {
    power = opener.OpenPower(w.power(), dir);
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("power: {}", e.what()));
  }
  try {
    console = opener.OpenConsole(w.console(), dir / "console.log", power.get());
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("console: {}", e.what()));
  }
  try {
    engine = opener.OpenEngine(w);
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("engine: {}", e.what()));
  }
  if (!missing.empty()) return offline(Join(missing));
  const std::string console_name = console->device();
  // What the board printed last: every health-check error quotes it, so a CI log shows why.
  const auto console_tail = [&] {
    const std::string tail = lab::TailLines(dir / "console.log", kConsoleTailLines);
    return tail.empty() ? std::string()
                        : fmt::format("\nlast {} lines of {}:\n{}", kConsoleTailLines,
                                      (dir / "console.log").string(), tail);
  };

  std::vector<v1::FixtureResult> results;
  try {
    // 2. The health check: this board can give verdicts tonight, or it gives none.
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(boot_ms);
    const auto left_ms = [&] {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      return static_cast<uint32_t>(std::max<int64_t>(left.count(), 1));
    };
    power->Cycle();
    std::string ready_line;
    // In slices of at most 1 s, so a QEMU that died (bad image, port taken) ends the wait
    // at once instead of after the whole boot timeout.
    bool ready = false;
    std::string power_failure;
    while (!ready && Clock::now() < deadline && !console->crash()) {
      ready = console->WaitForAgentReady(std::min<uint32_t>(left_ms(), 1000), &ready_line);
      if (!ready && !(power_failure = power->Failure()).empty()) break;
    }
    if (!ready) {
      const std::string crash = CrashReport(*console);
      power->Off();
      if (!crash.empty()) return offline("health check: crashed while booting: " + crash);
      if (!power_failure.empty())
        return offline(fmt::format("health check: power: {}{}", power_failure, console_tail()));
      return offline(fmt::format("health check: no \"{}\" on {} within {} ms of power-on{}",
                                 w.console().agent_ready(), console_name, boot_ms, console_tail()));
    }
    AgentClient dom0(w.dom0_agent());
    AgentClient guest(w.guest_agent());
    const v1::AgentInfo info = dom0.WaitReady(left_ms());
    guest.WaitReady(left_ms());
    if (info.backend() == "linux-xen") {
      // The oracle judges by the board file: the kernel must see the engine the same way,
      // and a non-coherent board needs the maintenance audit (maintenance_audit.h).
      if (info.dma_coherent() != lb.board.dma().coherent())
        return offline(fmt::format(
            "health check: dom0's kernel sees the engine ({}) as {}, the board file says {} "
            "(is dma-coherent in the DTB's PCIe node what the board says?){}",
            info.engine(), info.dma_coherent() ? "dma-coherent" : "not dma-coherent",
            lb.board.dma().coherent() ? "coherent" : "not coherent", console_tail()));
      if (!lb.board.dma().coherent() && !info.maintenance_audited())
        return offline(
            fmt::format("health check: the engine is not coherent but dmahil.ko records no cache "
                        "maintenance (its kprobes did not arm; see dmesg): the audit cannot run{}",
                        console_tail()));
    }
    v1::DeviceResponse answer;
    for (;;) {
      try {
        answer = engine->Info();
        break;
      } catch (const DeviceError& e) {
        // A TCP engine behind QEMU's hostfwd: QEMU accepts the connection and drops it
        // while nothing listens inside dom0 yet. Retry until the boot deadline.
        if (w.engine_link_case() != v1::BoardWiring::kEngineTcp || Clock::now() >= deadline) throw;
        spdlog::debug("{}: engine not answering yet: {}", name, e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    if (answer.status() != v1::DEVICE_OK)
      throw std::runtime_error(fmt::format(
          "engine Info: {} {}", v1::DeviceStatus_Name(answer.status()), answer.message()));
    GuardedDeviceClient device(*engine);
    BoardLink link{dom0, guest, device, info.line_size()};
    const v1::Fixture& known_good =
        lb.health_fixture ? *lb.health_fixture : farm.fixtures.front().fixture;
    const v1::FixtureResult health =
        RunFixture(link, lb.board, name, known_good, FixtureSeed(seed, 1000), 4001);
    if (health.verdict() != v1::VERDICT_PASS) {
      power->Off();
      return offline(fmt::format("health check: known-good fixture {} gave {} ({}{})",
                                 known_good.name(), v1::Verdict_Name(health.verdict()),
                                 report::DiagnosisName(health.diagnosis()),
                                 health.detail().empty() ? "" : ": " + health.detail()));
    }
    spdlog::info(
        "{}: healthy in {} ms ({}, {})", name,
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count(),
        ready_line, info.backend());

    // 3. The fixtures; a console crash ends the run as an infrastructure error.
    results = RunFixtures(farm, lb, link, seed, [&] {
      const std::string crash = CrashReport(*console);
      return crash.empty() ? std::string() : "board crashed under this fixture: " + crash;
    });
  } catch (const std::exception& e) {
    const std::string failure = power->Failure();  // before Off(), which reaps QEMU
    try {
      power->Off();
    } catch (const std::exception& off) {
      spdlog::error("{}: power off failed: {}", name, off.what());
    }
    const std::string crash = CrashReport(*console);
    return offline(fmt::format("health check: {}{}{}", e.what(),
                               failure.empty() ? "" : "; power: " + failure,
                               crash.empty() ? console_tail() : "; " + crash));
  }
  // 4. Off: a board left on overnight is a board someone else cannot use.
  try {
    power->Off();
  } catch (const std::exception& e) {
    spdlog::error("{}: power off failed: {}", name, e.what());
  }
  return results;
}

}  // namespace dmahil::controller
