// Board kinds (docs/architecture.md §4): what the one board runner (board_runner.h) needs
// from a board — its power switch, its console, its DMA engine and where its agents answer
// — behind one interface, and the registry that maps board.proto's BoardKind to it.
//
// A new board kind is one file under controller/run/kinds/ implementing BoardKind plus one
// RegisterBoardKind line in board_kinds.cc; a new power backend or console is one file in
// controller/lab/ that the kind's OpenPower / OpenConsole returns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/validate.h"
#include "controller/device/device_client.h"
#include "controller/lab/power.h"
#include "controller/lab/serial_console.h"
#include "dmahil/v1/board.pb.h"

namespace dmahil::controller {

struct CampaignOptions;

/// A board that did not come up (its process exited, a ready line that says nothing
/// useful): an infrastructure error, never a test failure.
class BoardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Where a board's two agents answer (gRPC targets, "host:port").
struct AgentEndpoints {
  std::string dom0;
  std::string guest;
};

/// What the rest of the controller may ask about a kind without running a board.
struct BoardKindTraits {
  /// Short name in logs and errors, e.g. "virtual", "qemu-xen", "hardware".
  std::string_view name;
  /// The board runs the model (sim/): catalogue faults can be injected into it (farm
  /// `faults`, `revision_dir`, `dmahil matrix`).
  bool runs_model = false;
  /// A non-coherent engine can show a missing clean or invalidate as stale lines in the
  /// data (the board's caches are real or modelled). False for QEMU/TCG, which models no
  /// caches: there a non-coherent board needs dmahil.ko's maintenance audit.
  bool stale_lines_observable = true;
  /// The text summary lists each failing fixture's pages (pfn, bfn, dma_addr): useful
  /// where the addresses come from a real kernel.
  bool shows_segments = false;
};

/// One board of one kind, opened by the board runner. Made per board and run by the
/// registry's factory. Each Open* throws (LabError, DeviceError, BoardError, ...) with a
/// message naming the resource when it is missing or unusable; the runner tries every one
/// so one run names everything that is wrong. Not thread-safe: one runner drives it.
class BoardKind {
 public:
  virtual ~BoardKind();
  virtual BoardKindTraits traits() const = 0;
  /// Power-on to agents answering, ms.
  virtual uint32_t BootTimeoutMs() const = 0;
  /// The board's power. `dir` is its output folder (<out>/<board>, created).
  virtual std::unique_ptr<lab::PowerSwitch> OpenPower(const std::filesystem::path& dir) = 0;
  /// Its console, logged to `log`; its agent_ready regex marks a booted board. Called
  /// after OpenPower (whether or not that succeeded): some consoles come with the power.
  virtual std::unique_ptr<lab::SerialConsole> OpenConsole(const std::filesystem::path& log) = 0;
  /// Its DMA engine; it may connect lazily (at the first request).
  virtual std::unique_ptr<DeviceClient> OpenEngine() = 0;
  /// Where the agents answer, once the console printed `ready_line` (the agent_ready
  /// match). Throws when the line does not say what the kind needs.
  virtual AgentEndpoints Agents(const std::string& ready_line) = 0;
  /// Whether the engine may refuse connections for a while after the agents answer (a
  /// TCP engine behind QEMU's port forward): the runner then retries it until the boot
  /// deadline.
  virtual bool EngineMayLagAgents() const { return false; }
};

/// Makes one board's BoardKind. `board` and `options` outlive it.
using BoardKindFactory = std::function<std::unique_ptr<BoardKind>(const LoadedBoard& board,
                                                                  const CampaignOptions& options)>;

/// One registered kind.
struct BoardKindEntry {
  BoardKindTraits traits;
  BoardKindFactory make;
};

/// Registers `kind` (a board.proto BoardKind value; a test may use an unassigned number).
/// Throws std::logic_error if the value is taken.
void RegisterBoardKind(int kind, BoardKindEntry entry);

/// The entry for `kind`, or nullptr when no kind is registered under that value.
const BoardKindEntry* FindBoardKind(int kind);

/// FindBoardKind(board.kind())'s traits; a default BoardKindTraits (name "unknown") when
/// the kind is not registered.
BoardKindTraits TraitsOf(const v1::Board& board);

}  // namespace dmahil::controller
