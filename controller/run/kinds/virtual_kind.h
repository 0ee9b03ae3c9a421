// The virtual board kind (docs/architecture.md §4, §7): its power is a dmahil-vboard child
// process (the model, the sim agents and the virtual DMA engine, all on loopback), its
// console is that process's output on a pty, and its ready line says where the agents and
// the engine answer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <boost/process/child.hpp>
#include <boost/process/group.hpp>
#include <boost/process/pipe.hpp>

#include "controller/lab/child_process.h"
#include "controller/lab/power.h"
#include "controller/run/board_kind.h"

namespace dmahil::controller::kinds {

/// What dmahil-vboard prints on its console when it is ready, followed by a JSON object
/// {"board", "dom0", "guest", "device" (host:port of the engine), "revision"}.
inline constexpr const char* kVboardReadyPrefix = "dmahil-vboard: ready ";

/// Where a ready virtual board answers, parsed from its ready line.
struct VboardEndpoints {
  AgentEndpoints agents;
  std::string device;    // the engine, "host:port"
  std::string revision;  // injected faults, "none"
};

/// Parses a console line containing kVboardReadyPrefix and its JSON. Throws BoardError
/// quoting the line when the prefix, the JSON or a field is missing.
VboardEndpoints ParseVboardReady(const std::string& line);

/// A virtual board's power: "on" starts `vboard --board F --seed S [--faults a,b]
/// [--revision-dir D]` with stdout and stderr on the pty that is the board's console and
/// stdin on a pipe (closing it stops the board); "off" closes the pipe, sends SIGTERM and,
/// after 2 s, SIGKILL, and reaps it.
class VboardPowerSwitch final : public lab::PowerSwitch {
 public:
  /// Opens the console pty. Throws LabError if it cannot be opened.
  VboardPowerSwitch(std::filesystem::path vboard, std::vector<std::string> args);
  ~VboardPowerSwitch() override;
  VboardPowerSwitch(const VboardPowerSwitch&) = delete;
  VboardPowerSwitch& operator=(const VboardPowerSwitch&) = delete;

  /// Starts the process unless it runs. Throws LabError naming the program if it cannot.
  void On() override;
  void Off() override;
  void Cycle() override;
  void Reset() override;
  std::string Describe() const override;
  /// "" while running or before On(); once it has exited on its own, how.
  std::string Failure() override;

  /// The console on the pty: agent_ready matches the ready line.
  std::unique_ptr<lab::SerialConsole> OpenConsole(const std::filesystem::path& log) const;

 private:
  std::filesystem::path vboard_;
  std::vector<std::string> args_;
  lab::PtyPair pty_;
  std::unique_ptr<boost::process::pipe> stdin_;
  std::unique_ptr<boost::process::group> group_;
  std::unique_ptr<boost::process::child> child_;
};

/// The registry entry of the virtual board kind: the traits, the factory, and its rules
/// (the Xen layout required, one cache line size).
BoardKindEntry VirtualKindEntry();

}  // namespace dmahil::controller::kinds
