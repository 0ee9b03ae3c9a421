// Board kinds (docs/architecture.md §4): what the one board runner (board_runner.h) needs
// from a board — its power switch, its console, its DMA engine and where its agents answer
// — behind one interface, and the registry that maps board.proto's BoardKind to it. Each
// kind also says what it needs of its board file and farm entry (BoardKindEntry::rules),
// so the controller loads farms and boards through the registry (LoadFarmWithKinds).
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
#include <utility>

#include "common/fault_catalogue.h"
#include "common/validate.h"
#include "controller/device/device_client.h"
#include "controller/lab/power.h"
#include "controller/lab/serial_console.h"
#include "controller/report/run_info.h"
#include "controller/run/disk_backing.h"
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
  /// How the farm wires a board of the kind (lab.proto BoardWiring).
  enum class Wiring {
    kNone,  // not wired: a wiring block in its farm entry is an error
    kLab,   // relay or PDU power, a UART console, the USB engine (docs/architecture.md §10)
    kQemu,  // power { qemu }, QEMU's pty console, engine_tcp (docs/architecture.md §9)
  };
  Wiring wiring = Wiring::kNone;
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
  /// The device side of the disk the domU's agent does block I/O on (its PV disk), for the
  /// PV block fixtures (docs/architecture.md §14), where the kind sees it without the board
  /// (an emulated disk's file); nullptr (the default): the runner uses the board file's
  /// test_disk through dom0's agent (ChooseDiskSide), else the fixtures are n/a. Called
  /// after OpenPower succeeded; may throw like the Open* above.
  virtual std::unique_ptr<DiskBacking> OpenDiskBacking() { return nullptr; }
};

/// Makes one board's BoardKind. `board` and `options` outlive it.
using BoardKindFactory = std::function<std::unique_ptr<BoardKind>(const LoadedBoard& board,
                                                                  const CampaignOptions& options)>;

/// One registered kind.
struct BoardKindEntry {
  BoardKindEntry() = default;
  BoardKindEntry(BoardKindTraits traits_in, BoardKindFactory make_in, BoardRules rules_in = {})
      : traits(traits_in), make(std::move(make_in)), rules(std::move(rules_in)) {}

  BoardKindTraits traits;
  BoardKindFactory make;
  /// What the kind needs of its board file and its farm entry beyond the generic rules
  /// (common/validate.h). The registry adds, in front of check_farm_entry, what the traits
  /// imply for every kind: faults and revision_dir only where runs_model, wiring only where
  /// `wiring` is not kNone.
  BoardRules rules;
  /// What the board boots, for its reports (report::BoardSoftware: kernel, hypervisor);
  /// empty: the kind cannot tell before the board runs (SoftwareOf leaves both empty).
  std::function<report::BoardSoftware(const LoadedBoard& board)> software;
};

/// Registers `kind` (a board.proto BoardKind value; a test may use an unassigned number).
/// Throws std::logic_error if the value is taken.
void RegisterBoardKind(int kind, BoardKindEntry entry);

/// The entry for `kind`, or nullptr when no kind is registered under that value.
const BoardKindEntry* FindBoardKind(int kind);

/// How `board` shows a cache-maintenance fault (common/fault_catalogue.h): kCached where
/// its kind's stale_lines_observable, else kCacheless.
BoardClass BoardClassOf(const v1::Board& board);

/// dmahil::ValidateFarmExpectations with each board's class from its kind: a farm `expect`
/// that names no diagnosis, or not the one the catalogue gives the board's faults on its
/// class, is a ConfigError with file, line and field.
void ValidateFarmExpectations(const LoadedFarm& farm);

/// The kernel and hypervisor `board` boots, from its kind's `software` (board name filled
/// in; kernel and hypervisor empty when the kind has none or is not registered).
report::BoardSoftware SoftwareOf(const LoadedBoard& board);

/// FindBoardKind(board.kind())'s traits; a default BoardKindTraits (name "unknown") when
/// the kind is not registered.
BoardKindTraits TraitsOf(const v1::Board& board);

/// The board.proto names of the registered kinds whose traits satisfy `which`, sorted, as
/// "A", "A <conjunction> B" or "A, B <conjunction> C" (the wired kinds with "and" give the
/// hardware and qemu-xen kinds' enum names): how messages name the kinds a rule allows.
std::string KindNames(const std::function<bool(const BoardKindTraits&)>& which,
                      std::string_view conjunction);

/// The registry's rules by kind (FindBoardKind(kind)->rules; nullptr for an unregistered
/// kind), for common/validate.h's loaders.
const BoardRules* RulesOfKind(int kind);

/// LoadBoard with the rules of the board's kind: the generic rules and the kind's, every
/// problem in one ConfigError ("<file>:<line>:<col>: <what>" lines).
v1::Board LoadBoardWithKind(const std::filesystem::path& file, SourceMap* source = nullptr);

/// LoadFarm with the rules of each board's kind: every board file by its kind's rules and
/// every farm entry by its kind's (faults, revision_dir, wiring: its power, console,
/// engine, agents and health fixture, and that no two boards share a relay, a UART, an
/// engine, a PDU outlet, an agent endpoint or a forwarded host port). Throws ConfigError
/// listing every problem, generic and the kinds', each with its file, line and field.
LoadedFarm LoadFarmWithKinds(const std::filesystem::path& file, const KnownFault& known_fault = {});

}  // namespace dmahil::controller
