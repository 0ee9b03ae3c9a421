// Semantic validation of board, fixture and farm files (docs/architecture.md §3, §4), and
// the loaders that parse and validate them. Every error names the file and line of the
// offending field. Only the rules every board shares are here: what a board kind needs of
// its board file and farm entry (wiring included) comes from the kind, through BoardRules
// (the board-kind registry, controller/run/board_kind.h, supplies them).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "common/problems.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/farm.pb.h"
#include "dmahil/v1/fixture.pb.h"

namespace dmahil {

/// Answers "is this a fault id of the catalogue?" (docs/architecture.md §8), e.g.
/// "dma-ops-bypass-xen". An empty function accepts every name (fault ids are then not
/// checked).
using KnownFault = std::function<bool(std::string_view)>;

/// The size of dom0 Linux's memory sections on arm64, bytes: 1 << SECTION_SIZE_BITS, 27
/// (128 MiB) with 4 KiB pages and 29 (512 MiB) with 64 KiB pages
/// (arch/arm64/include/asm/sparsemem.h, Linux 6.1). linux_page_size: 4096 or 65536 (any
/// other value: 128 MiB).
inline uint64_t MemorySectionBytes(uint32_t linux_page_size) {
  return uint64_t{1} << (linux_page_size == 65536 ? 29 : 27);
}

struct LoadedBoard;

/// What LoadFarm gives a kind's farm-entry rules (BoardRules::check_farm_entry) for one
/// board of the farm.
struct FarmBoardContext {
  int index = 0;                     // the entry is board[index] of the farm file
  std::filesystem::path dir;         // the farm file's folder; its relative paths start here
  Problems& problems;                // problems located in the farm file
  Claims& claims;                    // resources claimed by the farm's boards so far
  std::vector<std::string>& errors;  // whole error texts (e.g. one in another file + a note)

  /// "board[<index>]<sub>", e.g. Field(".wiring") is "board[2].wiring".
  std::string Field(std::string_view sub = {}) const;
  /// "<farm file:line:col of field_path>: note: <what>", to follow an error in another file.
  std::string Note(std::string_view field_path, std::string_view what) const;
};

/// What a board kind asks beyond the generic rules. Common knows no kind: the controller's
/// board-kind registry gives each kind's rules (controller/run/board_kind.h); a loader
/// given none checks the generic rules only.
struct BoardRules {
  /// The kind runs the model (sim/, docs/architecture.md §7), which needs the Xen layout:
  /// without xen { ... } the board is refused ("<noun> needs xen.dom0_ram ..."), and every
  /// cache level must have one line size (sim/cache.h models one).
  bool needs_xen_layout = false;
  /// How layout messages name such a board, e.g. "a virtual board".
  std::string_view noun = "a board";
  /// Further rules for the board file; adds to `problems` (located in the board file).
  std::function<void(const v1::Board& board, Problems& problems)> check_board;
  /// Rules for the board's farm entry (faults, revision_dir, wiring); may complete `board`
  /// (e.g. resolve the wiring's paths against ctx.dir, load its health fixture).
  std::function<void(LoadedBoard& board, FarmBoardContext& ctx)> check_farm_entry;
};

/// The rules of board kind `kind` (a board.proto BoardKind value), or nullptr for none.
using BoardRulesOf = std::function<const BoardRules*(int kind)>;

/// Whether `baud` is a serial rate Linux's termios accepts (what Boost.Asio's serial_port
/// can set), bits per second.
bool StandardBaud(uint32_t baud);

/// A few standard rates, for error messages ("e.g. 9600, 38400, ...").
std::string_view StandardBauds();

/// Checks the rules every board description must meet (RAM banks 4 KiB aligned and
/// disjoint, cache geometry (line size a power of two 16..4096 B, sets a power of two,
/// ways >= 1), DMA mask 32..64 bits, disjoint non-empty dma-ranges, Linux page size 4096 or
/// 65536, a kind set). Ports: unique non-empty names, address_bits 0 or 32..64, each port's
/// dma-ranges non-empty, without wrap, disjoint on the bus and CPU sides and reaching some
/// `ram` bank; dma.port, if set, names a declared port whose `coherent` and `dma_ranges`
/// equal dma.coherent and dma.dma_ranges. console: a UART name and a standard baud rate;
/// xen_support: a status, versions as MAJOR.MINOR. The Xen layout, when given or when
/// `rules` needs it (dom0/domU RAM inside `ram` and disjoint, no domU bank in a memory section
/// (MemorySectionBytes) holding dom0 RAM, grant-map region and swiotlb pool inside dom0 RAM, the
/// pool reachable by the device through dma-ranges and the mask). Then `rules`' own checks, if any
/// (e.g. what a hardware board needs: controller/run/kinds/lab_kinds.cc). `source` locates fields
/// of `board`. Throws ConfigError listing every violation, one "<file>:<line>:<col>: <what>" per
/// line, <what> starting with the field's path (e.g. "dma.port", "port[1].dma_ranges[0]").
void ValidateBoard(const v1::Board& board, const SourceMap& source,
                   const BoardRules* rules = nullptr);

/// Longest name (bytes) of a farm's board or a fixture: both become file names under --out.
inline constexpr size_t kMaxNameBytes = 64;

/// Whether `name` can be a farm board's or a fixture's name, which become one file or
/// folder name under --out: 1..kMaxNameBytes of [A-Za-z0-9._+-], not starting with '.' or
/// '-' (so never "..", a path or an option).
bool IsFileName(std::string_view name);

/// The grant references a fixture's buffer takes in the domU (controller/run/fixture_runner.cc
/// Foreign): pages + 2 x canary_pages 4 KiB pages, each granted twice with double_map.
uint64_t FixtureGrants(const v1::Fixture& fixture);

/// The I/O length in bytes of a PV block fixture (fixture.proto PvBlock): block.bytes, or
/// 0 meaning from block.buffer_offset to the end of the buffer's last 4 KiB page.
uint64_t PvBlockBytes(const v1::Fixture& fixture);

/// Checks a fixture: name, direction and source set; pages 1..1024; iterations >= 1;
/// dma_mask_bits 0 or 32..64; canary_pages 0..4. Throws ConfigError as ValidateBoard.
void ValidateFixture(const v1::Fixture& fixture, const SourceMap& source);

/// Checks a farm file on its own (not the files it names): at least one board, each with
/// a non-empty unique name and a board_file; at least one fixture_file, none empty or
/// repeated; and, if `known_fault` is given, that every fault id is known.
/// Throws ConfigError as ValidateBoard.
void ValidateFarm(const v1::Farm& farm, const SourceMap& source,
                  const KnownFault& known_fault = {});

/// Parses and validates a board file (ValidateBoard with `rules(board.kind())`, if `rules`
/// is given). `source`, if non-null, receives field locations. Throws ConfigError
/// (unreadable file, syntax or semantic error).
v1::Board LoadBoard(const std::filesystem::path& file, SourceMap* source = nullptr,
                    const BoardRulesOf& rules = {});

/// Parses and validates a fixture file. Throws ConfigError.
v1::Fixture LoadFixture(const std::filesystem::path& file, SourceMap* source = nullptr);

/// One board of a loaded farm.
struct LoadedBoard {
  v1::FarmBoard entry;         // the farm's entry: report name, faults, expect
  std::filesystem::path file;  // board_file resolved against the farm file's folder
  v1::Board board;             // the validated board description
  SourceMap source;            // locations in `file`
  /// Virtual boards: the folder of revision files (common/revision.h) dmahil-vboard reads
  /// at every power-on; entry.revision_dir resolved against the farm file's folder. Empty:
  /// none. Not checked at load time (a deploy hook writes it before power-on); code that
  /// builds a LoadedFarm in memory sets it directly.
  std::filesystem::path revision_dir;
  /// Wired boards: wiring.health_fixture, loaded by the kind's farm-entry rules; none when
  /// the wiring names none (the health check then uses the farm's first fixture).
  std::optional<v1::Fixture> health_fixture;
};

/// One fixture of a loaded farm.
struct LoadedFixture {
  std::filesystem::path file;  // fixture_file resolved against the farm file's folder
  v1::Fixture fixture;         // the validated fixture
  SourceMap source;            // locations in `file`
};

/// A farm file with every board and fixture file it names, all loaded and validated.
struct LoadedFarm {
  std::filesystem::path file;           // the farm file, as given
  v1::Farm farm;                        // the validated farm
  SourceMap source;                     // locations in `file`
  std::vector<LoadedBoard> boards;      // in farm order
  std::vector<LoadedFixture> fixtures;  // in farm order
};

/// Loads the farm file `file`, validates it (ValidateFarm with `known_fault`), then loads
/// every board_file (LoadBoard with `rules`) and fixture_file relative to the farm file's
/// folder, resolves each board's revision_dir the same way (LoadedBoard::revision_dir; the
/// folder itself is not read) and checks that fixture names are unique. With `rules`, each
/// board's farm entry is then checked by its kind (BoardRules::check_farm_entry: which
/// kinds take faults, revision_dir and wiring, and the wiring itself). Without, faults,
/// revision_dir and wiring are not checked: the controller loads farms through the
/// board-kind registry (controller/run/board_kind.h LoadFarmWithKinds).
/// Throws ConfigError listing every problem found; an error inside a board or fixture file
/// names that file and line, followed by a note pointing at the farm line that names it.
LoadedFarm LoadFarm(const std::filesystem::path& file, const KnownFault& known_fault = {},
                    const BoardRulesOf& rules = {});

}  // namespace dmahil
