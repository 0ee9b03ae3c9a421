// Semantic validation of board, fixture and farm files (DESIGN §3), and the loaders that
// parse and validate them. Every error names the file and line of the offending field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
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

/// The size of dom0 Linux's memory sections on arm64, bytes: 1 << SECTION_SIZE_BITS, 27
/// (128 MiB) with 4 KiB pages and 29 (512 MiB) with 64 KiB pages
/// (arch/arm64/include/asm/sparsemem.h, Linux 6.1). linux_page_size: 4096 or 65536 (any
/// other value: 128 MiB).
inline uint64_t MemorySectionBytes(uint32_t linux_page_size) {
  return uint64_t{1} << (linux_page_size == 65536 ? 29 : 27);
}

/// Checks the rules a board description must meet (RAM banks 4 KiB aligned and disjoint,
/// cache geometry (line size a power of two 16..4096 B, sets a power of two, ways >= 1),
/// DMA mask 32..64 bits, disjoint non-empty dma-ranges, Linux page size 4096 or 65536).
/// Ports (issue 5): unique non-empty names, address_bits 0 or 32..64, each port's
/// dma-ranges non-empty, without wrap, disjoint on the bus and CPU sides and reaching some
/// `ram` bank; dma.port, if set, names a declared port whose `coherent` and `dma_ranges`
/// equal dma.coherent and dma.dma_ranges. console: a UART name and a standard baud rate;
/// xen_support: a status, versions as MAJOR.MINOR.
/// BOARD_KIND_HARDWARE also needs at least one port, dma.port, console, xen_support, l1 and
/// cpus >= 1. The Xen layout is required for BOARD_KIND_VIRTUAL (dom0/domU RAM inside `ram`
/// and disjoint, no domU bank in a memory section (MemorySectionBytes) holding dom0 RAM,
/// grant-map region and swiotlb pool inside dom0 RAM,
/// the pool reachable by the device through dma-ranges and the mask) and checked by the
/// same rules on any other kind that gives one. `source` locates fields of `board`.
/// Throws ConfigError listing every violation, one "<file>:<line>:<col>: <what>" per line,
/// <what> starting with the field's path (e.g. "dma.port", "port[1].dma_ranges[0]").
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
  /// Hardware boards: wiring.health_fixture, loaded; none when the wiring names none (the
  /// health check then uses the farm's first fixture).
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
/// every board_file and fixture_file relative to the farm file's folder, and resolves each
/// board's revision_dir the same way (LoadedBoard::revision_dir; the folder itself is not
/// read). Also checks that faults and revision_dir are only given to virtual boards and
/// that fixture names are unique.
/// Wiring (lab.proto BoardWiring): required for BOARD_KIND_HARDWARE and BOARD_KIND_QEMU_XEN
/// boards and an error on any other kind.
/// BOARD_KIND_QEMU_XEN (issue 4): power must be qemu (and qemu is only for them): an initrd,
/// xen and kernel or a fetch_env to take them from, memory_mib 0 or 256..65536 with at
/// least 128 MiB beyond dom0_mem_mib, cpus 0..8, edu_dma_mask 0 or 2^n - 1, three host
/// ports 1..65535; the console has no device (the controller's pty) and needs
/// agent_ready; the engine is engine_tcp (USB engine is refused), and dom0_agent,
/// guest_agent and engine_tcp must be 127.0.0.1:<the matching port>. Its relative paths
/// (fetch_env, xen, kernel, initrd, a qemu given as a path) are resolved against the farm
/// file's folder in LoadedBoard::entry. The rules below are for BOARD_KIND_HARDWARE. It needs a
/// power backend (gpio: a power line with a chip, optional reset and boot-mode lines with chips;
/// pdu: an http(s) url and a hostname), a console (device, a standard baud equal to the board's
/// console.baud, data_bits 0 or 5..8, stop_bits 0..2, agent_ready a valid ECMAScript regex if
/// given), a USB engine (16-bit nonzero vid and pid, ep_in an IN bulk address (bit 0x80 set),
/// ep_out an OUT one (bit clear), endpoint numbers 1..15, interface 0..255), dom0_agent and
/// guest_agent as host:port or [ipv6]:port (port 1..65535), and a health_fixture (relative to the
/// farm file) that loads as a fixture. No two wired boards may share a GPIO line, serial device,
/// USB engine, PDU outlet, agent endpoint or forwarded host port. engine_tcp is refused on them.
/// Throws ConfigError listing every problem found; an error inside a board or fixture file
/// names that file and line, followed by a note pointing at the farm line that names it.
LoadedFarm LoadFarm(const std::filesystem::path& file, const KnownFault& known_fault = {});

}  // namespace dmahil
