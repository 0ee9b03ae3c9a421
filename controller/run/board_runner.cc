#include "controller/run/board_runner.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "controller/device/window_guard.h"
#include "controller/lab/log_tail.h"
#include "controller/report/names.h"
#include "controller/report/write_file.h"
#include "controller/run/agent_client.h"
#include "controller/run/fixture_kinds.h"

namespace dmahil::controller {
namespace {

using Clock = std::chrono::steady_clock;

/// What the console says about a crash, or "" if none.
std::string CrashReport(const lab::SerialConsole& console) {
  const auto crash = console.crash();
  if (!crash) return "";
  return fmt::format("console: {}\n{}", crash->Summary(), crash->FormatExcerpt());
}

/// Pattern seed and buffer id of the health check's known-good fixture: apart from the
/// farm's fixtures (campaign.h FixtureSeed, buffer 2i + 1).
constexpr size_t kHealthFixtureIndex = 1000;
constexpr uint32_t kHealthBufferId = 4001;

/// Why dom0's agent says this board cannot give verdicts, or "".
std::string AgentProblem(const v1::AgentInfo& info, const LoadedBoard& lb,
                         const BoardKindTraits& traits) {
  // The oracle judges by the board file: the kernel must see the engine the same way.
  if (info.dma_coherent() != lb.board.dma().coherent())
    return fmt::format(
        "dom0's kernel sees the engine ({}) as {}, the board file says {} (is dma-coherent in "
        "the DTB's PCIe node what the board says?)",
        info.engine().empty() ? info.backend() : info.engine(),
        info.dma_coherent() ? "dma-coherent" : "not dma-coherent",
        lb.board.dma().coherent() ? "coherent" : "not coherent");
  // The catalogue (grant-64k-offset's cannot_manifest) and the sim model go by the board
  // file's page size: the kernel booted must have it (a 64 KiB board on a 4 KiB kernel, or
  // the reverse, is a farm that boots the wrong build). 0: an agent that does not say.
  if (info.page_size() != 0 && info.page_size() != lb.board.linux_page_size())
    return fmt::format(
        "dom0's kernel runs {}-byte pages, the board file says linux_page_size {} (does the "
        "wiring boot the kernel the board file describes, e.g. build-qemu/kernels/dom0-64k?)",
        info.page_size(), lb.board.linux_page_size());
  // Where caches cannot show a missing clean or invalidate, only the audit can
  // (maintenance_audit.h).
  if (!lb.board.dma().coherent() && !traits.stale_lines_observable && !info.maintenance_audited())
    return fmt::format(
        "the engine is not coherent and a {} board shows no stale lines, but dmahil.ko records "
        "no cache maintenance (its kprobes did not arm; see dmesg): the audit cannot run",
        traits.name);
  return "";
}

}  // namespace

std::vector<v1::FixtureResult> RunBoard(const LoadedFarm& farm, const LoadedBoard& lb,
                                        const CampaignOptions& opt, BoardKind& kind) {
  const std::string& name = lb.entry.name();
  const BoardKindTraits traits = kind.traits();
  const uint32_t boot_ms = kind.BootTimeoutMs();
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
  std::unique_ptr<DiskBacking> disk;
  std::vector<std::string> missing;
  std::filesystem::path dir;
  try {
    dir = report::OutputChild(opt.out_dir, name);
    std::filesystem::create_directories(dir);
  } catch (const std::exception& e) {
    return offline(e.what());
  }
  try {
    power = kind.OpenPower(dir);
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("power: {}", e.what()));
  }
  try {
    console = kind.OpenConsole(dir / "console.log");
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("console: {}", e.what()));
  }
  try {
    engine = kind.OpenEngine();
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("engine: {}", e.what()));
  }
  try {
    if (power) disk = kind.OpenDiskBacking();
  } catch (const std::exception& e) {
    missing.push_back(fmt::format("disk: {}", e.what()));
  }
  if (!missing.empty()) return offline(fmt::format("{}", fmt::join(missing, "; ")));
  const std::string console_name = console->device();
  // What the board printed last: every health-check error quotes it, so a CI log shows why.
  const auto console_tail = [&] {
    const std::string tail = lab::TailLines(dir / "console.log", kConsoleTailLines);
    return tail.empty() ? std::string()
                        : fmt::format("\nlast {} lines of {}:\n{}", kConsoleTailLines,
                                      (dir / "console.log").string(), tail);
  };
  const auto power_off = [&] {
    try {
      power->Off();
    } catch (const std::exception& e) {
      spdlog::error("{}: power off failed: {}", name, e.what());
    }
  };

  std::vector<v1::FixtureResult> results;
  try {
    // 2. The health check: this board can give verdicts tonight, or it gives none.
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(boot_ms);
    const auto left_ms = [&] {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      return static_cast<uint32_t>(std::max<int64_t>(left.count(), 1));
    };
    power->Cycle();
    std::string ready_line;
    // In slices of at most 1 s, so a board process that died (bad image, bad board file,
    // port taken) ends the wait at once instead of after the whole boot timeout.
    bool ready = false;
    std::string power_failure;
    while (!ready && Clock::now() < deadline && !console->crash()) {
      ready = console->WaitForAgentReady(std::min<uint32_t>(left_ms(), 1000), &ready_line);
      if (!ready && !(power_failure = power->Failure()).empty()) break;
    }
    if (!ready) {
      const std::string crash = CrashReport(*console);
      power_off();
      if (!crash.empty()) return offline("health check: crashed while booting: " + crash);
      if (!power_failure.empty())
        return offline(fmt::format("health check: power: {}{}", power_failure, console_tail()));
      return offline(fmt::format("health check: no \"{}\" on {} within {} ms of power-on{}",
                                 console->agent_ready(), console_name, boot_ms, console_tail()));
    }
    const AgentEndpoints agents = kind.Agents(ready_line);
    AgentClient dom0(agents.dom0);
    AgentClient guest(agents.guest);
    const v1::AgentInfo info = dom0.WaitReady(left_ms());
    guest.WaitReady(left_ms());
    if (const std::string problem = AgentProblem(info, lb, traits); !problem.empty()) {
      power_off();
      return offline(fmt::format("health check: {}{}", problem, console_tail()));
    }
    v1::DeviceResponse answer;
    for (;;) {
      try {
        answer = engine->Info();
        break;
      } catch (const DeviceError& e) {
        // A TCP engine behind QEMU's hostfwd: QEMU accepts the connection and drops it
        // while nothing listens inside dom0 yet. Retry until the boot deadline.
        if (!kind.EngineMayLagAgents() || Clock::now() >= deadline) throw;
        spdlog::debug("{}: engine not answering yet: {}", name, e.what());
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
    }
    if (answer.status() != v1::DEVICE_OK)
      throw std::runtime_error(fmt::format(
          "engine Info: {} {}", v1::DeviceStatus_Name(answer.status()), answer.message()));
    GuardedDeviceClient device(*engine);
    // The device side of the domU's PV disk: the kind's (an emulated disk's file), else
    // the board file's test disk through dom0's agent (docs/architecture.md §14).
    DiskSide disk_side = ChooseDiskSide(std::move(disk), lb.board, dom0, info);
    BoardLink link{
        dom0, guest, device, info.line_size(), disk_side.backing.get(), disk_side.unseen};
    const v1::Fixture& known_good =
        lb.health_fixture ? *lb.health_fixture : farm.fixtures.front().fixture;
    const v1::FixtureResult health = RunFixtureOfKind(
        link, lb.board, name, known_good, FixtureSeed(seed, kHealthFixtureIndex), kHealthBufferId);
    if (health.verdict() == v1::VERDICT_ERROR) {
      power_off();
      return offline(fmt::format("health check: known-good fixture {} could not run: {}",
                                 known_good.name(), health.detail()));
    }
    if (health.verdict() == v1::VERDICT_FAIL)
      spdlog::warn(
          "{}: known-good fixture {} failed ({}): the code under test, not the board; "
          "running the fixtures",
          name, known_good.name(), report::DiagnosisName(health.diagnosis()));
    spdlog::info("{}: healthy in {} ms ({} board, {}, revision {}, seed {})", name,
                 std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count(),
                 traits.name, info.backend(), info.revision().empty() ? "-" : info.revision(),
                 seed);

    // 3. The fixtures; a console crash ends the run as an infrastructure error.
    results = RunFixtures(farm, lb, link, seed, [&] {
      const std::string crash = CrashReport(*console);
      return crash.empty() ? std::string() : "board crashed under this fixture: " + crash;
    });
  } catch (const std::exception& e) {
    const std::string failure = power->Failure();  // before Off(), which reaps the process
    power_off();
    const std::string crash = CrashReport(*console);
    return offline(fmt::format("health check: {}{}{}", e.what(),
                               failure.empty() ? "" : "; power: " + failure,
                               crash.empty() ? console_tail() : "; " + crash));
  }
  // 4. Off: a board left on overnight is a board someone else cannot use.
  power_off();
  return results;
}

}  // namespace dmahil::controller
