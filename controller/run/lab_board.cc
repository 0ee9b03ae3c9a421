#include "controller/run/lab_board.h"

#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "controller/device/usb_device_client.h"
#include "controller/device/window_guard.h"
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

}  // namespace

std::unique_ptr<lab::PowerSwitch> RealLabOpener::OpenPower(const v1::PowerControl& power) {
  return lab::MakePowerSwitch(power);
}

std::unique_ptr<lab::SerialConsole> RealLabOpener::OpenConsole(const v1::SerialConsole& console,
                                                               const std::filesystem::path& log) {
  return std::make_unique<lab::SerialConsole>(console, log);
}

std::unique_ptr<DeviceClient> RealLabOpener::OpenEngine(const v1::UsbEngine& engine) {
  return MakeUsbDeviceClient(engine);
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
    power = opener.OpenPower(w.power());
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("power: {}", e.what()));
  }
  try {
    console = opener.OpenConsole(w.console(), dir / "console.log");
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("console: {}", e.what()));
  }
  try {
    engine = opener.OpenEngine(w.engine());
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("engine: {}", e.what()));
  }
  if (!missing.empty()) return offline(Join(missing));

  std::vector<v1::FixtureResult> results;
  try {
    // 2. The health check: this board can give verdicts tonight, or it gives none.
    const auto t0 = std::chrono::steady_clock::now();
    power->Cycle();
    std::string ready_line;
    if (!console->WaitForAgentReady(boot_ms, &ready_line)) {
      const std::string crash = CrashReport(*console);
      power->Off();
      return offline(crash.empty()
                         ? fmt::format("health check: no \"{}\" on {} within {} ms "
                                       "of power-on",
                                       w.console().agent_ready(), w.console().device(), boot_ms)
                         : "health check: crashed while booting: " + crash);
    }
    AgentClient dom0(w.dom0_agent());
    AgentClient guest(w.guest_agent());
    const v1::AgentInfo info = dom0.WaitReady(boot_ms);
    guest.WaitReady(boot_ms);
    const v1::DeviceResponse answer = engine->Info();
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
    try {
      power->Off();
    } catch (const std::exception& off) {
      spdlog::error("{}: power off failed: {}", name, off.what());
    }
    const std::string crash = CrashReport(*console);
    return offline(fmt::format("health check: {}{}", e.what(), crash.empty() ? "" : "; " + crash));
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
