// `dmahil board check <file>...`: loads and validates board files (and farm
// files, with the boards and wiring they name) and prints one line per valid board, or
// the errors, each "<file>:<line>:<col>: <field> ...: <what>".
//
//   dmahil board check boards/*.textproto
//   dmahil board check ci/farms/lab-example.textproto
//
// Exit status: 0 iff every file is valid; 2 otherwise (any unreadable, malformed or
// semantically wrong file; a bad command line).
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "common/validate.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/farm.pb.h"

namespace CLI {
class App;
}

namespace dmahil::boardcheck {

/// The command line of `dmahil board check`.
struct CommandLine {
  std::vector<std::filesystem::path> files;  // board or farm files, text format
};

/// Registers `board` and its subcommand `check <file>...` on `app`; returns the `check`
/// subcommand (test ->parsed() to know it was chosen).
CLI::App* AddBoardCommands(CLI::App& app, CommandLine& cl);

/// What a configuration file holds.
enum class FileKind { kBoard, kFarm };

/// A file is a farm if its header says `# proto-message: dmahil.v1.Farm`, or, without a
/// proto-message header, if it parses as a farm with at least one board or fixture_file;
/// everything else (including unreadable files) is treated as a board file, so the board
/// loader reports what is wrong with it.
FileKind DetectKind(const std::filesystem::path& file);

/// One line describing a valid board: name, kind, SoC, CPUs, line size, the engine's port
/// and coherency, dma-ranges, DMA mask (and SMMU), e.g.
/// "zcu102: hardware, AMD/Xilinx ... (4x Cortex-A53), 4 CPUs, 64 B lines, engine on pcie
/// (non-coherent), dma-ranges identity, mask 64-bit".
std::string Summarize(const v1::Board& board);

/// One line describing a wired farm board's lab wiring: power, console, USB engine,
/// agents, e.g. "power gpio gpiochip0:17, console /dev/...@115200, engine 1d50:6130 ...".
std::string SummarizeWiring(const v1::BoardWiring& wiring);

/// Runs the check on cl.files in order. Valid boards go to `out`, one line each
/// ("<file>: <summary>"; farm boards as "<farm>: board \"<name>\" (<board file>): <summary>;
/// wired: <wiring>"), then a tally line; every error goes to `err` as the loaders word it.
/// `known_fault` checks the fault ids of farm files (empty: not checked).
/// Returns 0 iff every file is valid, 2 otherwise.
int BoardCheckCommand(const CommandLine& cl, const KnownFault& known_fault, std::ostream& out,
                      std::ostream& err);

}  // namespace dmahil::boardcheck
