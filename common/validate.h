// Semantic validation of board, fixture and farm files (DESIGN §3), and the loaders that
// parse and validate them. Every error names the file and line of the offending field.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/farm.pb.h"
#include "dmahil/v1/fixture.pb.h"

namespace dmahil {

/// Answers "is this a fault id of the catalogue?" (DESIGN §6), e.g. "dma-ops-bypass-xen".
/// An empty function accepts every name (fault ids are then not checked).
using KnownFault = std::function<bool(std::string_view)>;

/// Checks the rules a board description must meet (RAM banks 4 KiB aligned and disjoint,
/// cache geometry, DMA mask 32..64 bits, disjoint non-empty dma-ranges, Linux page size
/// 4096 or 65536; for BOARD_KIND_VIRTUAL also the Xen layout: dom0/domU RAM inside `ram`
/// and disjoint, grant-map region and swiotlb pool inside dom0 RAM, the pool reachable by
/// the device through dma-ranges and the mask). `source` locates fields of `board`.
/// Throws ConfigError listing every violation, one "<file>:<line>:<col>: <what>" per line.
void ValidateBoard(const v1::Board& board, const SourceMap& source);

/// Checks a fixture: name, direction and source set; pages 1..1024; iterations >= 1;
/// dma_mask_bits 0 or 32..64; canary_pages 0..4. Throws ConfigError as ValidateBoard.
void ValidateFixture(const v1::Fixture& fixture, const SourceMap& source);

/// Checks a farm file on its own (not the files it names): at least one board, each with
/// a non-empty unique name and a board_file; at least one fixture_file, none empty or
/// repeated; and, if `known_fault` is given, that every fault id is known.
/// Throws ConfigError as ValidateBoard.
void ValidateFarm(const v1::Farm& farm, const SourceMap& source,
                  const KnownFault& known_fault = {});

/// Parses and validates a board file. `source`, if non-null, receives field locations.
/// Throws ConfigError (unreadable file, syntax or semantic error).
v1::Board LoadBoard(const std::filesystem::path& file, SourceMap* source = nullptr);

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
/// every board_file and fixture_file relative to the farm file's folder, and resolves each
/// board's revision_dir the same way (LoadedBoard::revision_dir; the folder itself is not
/// read). Also checks that faults and revision_dir are only given to virtual boards and
/// that fixture names are unique.
/// Throws ConfigError listing every problem found; an error inside a board or fixture file
/// names that file and line, followed by a note pointing at the farm line that names it.
LoadedFarm LoadFarm(const std::filesystem::path& file, const KnownFault& known_fault = {});

}  // namespace dmahil
