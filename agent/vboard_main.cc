// dmahil-vboard: one virtual board as one process (docs/architecture.md §7).
//
//   dmahil-vboard --board boards/zcu102-virtual.textproto --faults dma-ops-bypass-xen --seed 7
//   dmahil-vboard --board boards/zcu102-virtual.textproto --revision-dir deploy/rev --seed 7
//
// --revision-dir: a folder of revision files (linux.textproto, xen.textproto; proto
// dmahil.v1.Revision) read at this power-on; each fault switch is taken or dormant this
// boot (its boot_rate, drawn from --seed), logged on the console (stderr). The injected
// faults are --faults plus the taken switches.
//
// Prints its ready line on stdout (the controller puts stdout and stderr on one pty, the
// board's console: controller/run/kinds/virtual_kind.h):
//   dmahil-vboard: ready {"board":"...","dom0":"127.0.0.1:P","guest":"127.0.0.1:P",
//                         "device":"127.0.0.1:P","revision":"..."}
// and serves until stdin closes or SIGTERM/SIGINT. Exit 2 on a configuration error.
#include <csignal>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent/vboard.h"
#include "common/validate.h"
#include "sim/error.h"

int main(int argc, char** argv) {
  CLI::App app{"dmahil-vboard: a virtual board (sim agents + virtual DMA engine) on loopback"};
  std::string board_file;
  std::vector<std::string> faults;
  uint64_t seed = 1;
  app.add_option("--board", board_file, "board file (text format)")->required();
  app.add_option("--faults", faults, "catalogue faults to inject")->delimiter(',');
  app.add_option("--seed", seed, "model PRNG seed");
  std::string revision_dir;
  app.add_option("--revision-dir", revision_dir,
                 "folder of revision files (linux.textproto, xen.textproto) read at boot");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_default_logger(spdlog::stderr_logger_mt("vboard"));

  try {
    const dmahil::v1::Board board = dmahil::LoadBoard(board_file);
    if (!board.has_xen())
      throw std::runtime_error(board_file +
                               ": the model needs the board's xen layout (dom0 and domU RAM, the "
                               "grant-map region, the swiotlb pool)");
    if (!revision_dir.empty()) {
      const dmahil::agent::BootedRevision rev = dmahil::agent::BootRevision(revision_dir, seed);
      if (rev.files.empty())
        spdlog::info("revision folder {}: no revision files (a clean revision)", revision_dir);
      for (const std::string& line : rev.ConsoleLines()) spdlog::info("{}", line);
      for (const std::string& id : rev.TakenFaults()) faults.push_back(id);
    }
    dmahil::agent::VirtualBoardServer server(board, faults, seed);
    const auto& ep = server.endpoints();
    nlohmann::json ready = {{"board", board.name()},
                            {"dom0", ep.dom0},
                            {"guest", ep.guest},
                            {"device", "127.0.0.1:" + std::to_string(ep.device_port)},
                            {"revision", server.board().faults().ToString()}};
    std::cout << "dmahil-vboard: ready " << ready.dump() << std::endl;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread stdin_watch([] {
      std::string line;
      while (std::getline(std::cin, line)) {
      }
      kill(getpid(), SIGTERM);
    });
    stdin_watch.detach();
    int sig = 0;
    sigwait(&set, &sig);
    spdlog::info("{}: stopping on signal {}", board.name(), sig);
    server.Shutdown();
    return 0;
  } catch (const dmahil::sim::SimError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
}
