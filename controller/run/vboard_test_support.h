// Tests: a dmahil-vboard powered on through the virtual kind's power switch, whose agents
// and engine a test's own board kind borrows.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "controller/run/kinds/virtual_kind.h"

namespace dmahil::testing {

/// A dmahil-vboard of `board_file` with `faults`, powered on, whose agents and engine the
/// twins borrow.
class RunningVboard {
 public:
  RunningVboard(const std::filesystem::path& board_file, const std::vector<std::string>& faults,
                const std::filesystem::path& dir)
      : power_(Vboard(), Args(board_file, faults)) {
    power_.On();
    console_ = power_.OpenConsole(dir / "vboard.log");
    std::string line;
    if (!console_->WaitForAgentReady(10000, &line))
      throw std::runtime_error("dmahil-vboard did not come up: " + power_.Failure());
    ready_ = controller::kinds::ParseVboardReady(line);
  }
  const controller::kinds::VboardEndpoints& ready() const { return ready_; }

 private:
  static std::filesystem::path Vboard() {
    return std::filesystem::path(DMAHIL_TEST_BINARY_DIR) / "bin/dmahil-vboard";
  }
  static std::vector<std::string> Args(const std::filesystem::path& board_file,
                                       const std::vector<std::string>& faults) {
    std::vector<std::string> args = {"--board", board_file.string(), "--seed", "7"};
    if (!faults.empty())
      args.insert(args.end(), {"--faults", fmt::format("{}", fmt::join(faults, ","))});
    return args;
  }
  controller::kinds::VboardPowerSwitch power_;
  std::unique_ptr<dmahil::lab::SerialConsole> console_;
  controller::kinds::VboardEndpoints ready_;
};

}  // namespace dmahil::testing
