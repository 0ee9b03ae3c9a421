#include "controller/boardcheck/board_check.h"

#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "common/config.h"
#include "common/farm_expectations.h"
#include "controller/run/board_kind.h"

namespace dmahil::boardcheck {
namespace {

// "1 GiB", "896 MiB", "4 KiB", else hex bytes.
std::string HumanSize(uint64_t bytes) {
  constexpr uint64_t kKiB = 1024;
  constexpr uint64_t kMiB = kKiB * 1024;
  constexpr uint64_t kGiB = kMiB * 1024;
  if (bytes != 0 && bytes % kGiB == 0) return fmt::format("{} GiB", bytes / kGiB);
  if (bytes != 0 && bytes % kMiB == 0) return fmt::format("{} MiB", bytes / kMiB);
  if (bytes != 0 && bytes % kKiB == 0) return fmt::format("{} KiB", bytes / kKiB);
  return fmt::format("{:#x} B", bytes);
}

std::string ReadAll(const std::filesystem::path& file, bool& ok) {
  std::ifstream in(file);
  ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Checks one board file; prints its summary or its errors. Returns whether it is valid.
bool CheckBoard(const std::filesystem::path& file, std::ostream& out, std::ostream& err) {
  try {
    const v1::Board board = controller::LoadBoardWithKind(file);
    out << file.string() << ": " << Summarize(board) << "\n";
    return true;
  } catch (const ConfigError& e) {
    err << e.what() << "\n";
    return false;
  }
}

// Checks one farm file with everything it names; prints one line per board or the errors.
bool CheckFarm(const std::filesystem::path& file, const KnownFault& known_fault, std::ostream& out,
               std::ostream& err) {
  try {
    const LoadedFarm farm = controller::LoadFarmWithKinds(file, known_fault);
    controller::ValidateFarmExpectations(farm);  // `expect` against the fault catalogue
    for (const LoadedBoard& b : farm.boards) {
      out << fmt::format("{}: board \"{}\" ({}): {}", file.string(), b.entry.name(),
                         b.file.string(), Summarize(b.board));
      if (b.entry.has_wiring()) out << "; wired: " << SummarizeWiring(b.entry.wiring());
      out << "\n";
    }
    return true;
  } catch (const ConfigError& e) {
    err << e.what() << "\n";
    return false;
  }
}

}  // namespace

CLI::App* AddBoardCommands(CLI::App& app, CommandLine& cl) {
  CLI::App* board = app.add_subcommand("board", "board descriptions (boards/*.textproto)");
  board->require_subcommand(1);
  CLI::App* check = board->add_subcommand(
      "check",
      "load and validate board files (and farm files with their boards and wiring); one line "
      "per valid board, or the errors with file:line:col; exit 0 iff all are valid, else 2");
  check->add_option("file", cl.files, "board or farm file (text format)")->required();
  return check;
}

FileKind DetectKind(const std::filesystem::path& file) {
  bool ok = false;
  const std::string text = ReadAll(file, ok);
  if (!ok) return FileKind::kBoard;
  static const std::regex kHeader(R"(^#[ \t]*proto-message:[ \t]*dmahil\.v1\.([A-Za-z]+))",
                                  std::regex::multiline);
  std::smatch m;
  if (std::regex_search(text, m, kHeader))
    return m[1] == "Farm" ? FileKind::kFarm : FileKind::kBoard;
  try {
    v1::Farm farm;
    ParseTextProto(text, file, farm);
    return farm.board_size() > 0 || farm.fixture_file_size() > 0 ? FileKind::kFarm
                                                                 : FileKind::kBoard;
  } catch (const ConfigError&) {
    return FileKind::kBoard;
  }
}

std::string Summarize(const v1::Board& board) {
  std::string lines;
  const uint32_t l2 = board.cache().line_size();
  const uint32_t l1 = board.has_l1() ? board.l1().line_size() : 0;
  if (l1 == 0 || l1 == l2)
    lines = fmt::format("{} B lines", l2);
  else
    lines = fmt::format("L1 {} B / L2 {} B lines", l1, l2);
  const v1::DmaEngineDesc& dma = board.dma();
  const std::string coherency = dma.coherent() ? "coherent" : "non-coherent";
  const std::string engine = dma.port().empty()
                                 ? fmt::format("engine {}", coherency)
                                 : fmt::format("engine on {} ({})", dma.port(), coherency);
  std::string ranges;
  for (const v1::DmaRange& r : dma.dma_ranges())
    ranges += fmt::format("{}bus {:#x} -> cpu {:#x} ({})", ranges.empty() ? "" : ", ", r.bus_base(),
                          r.cpu_base(), HumanSize(r.size()));
  if (ranges.empty()) ranges = "identity";
  const uint32_t cpus = board.cpus() == 0 ? 1 : board.cpus();
  return fmt::format("{}: {}, {}, {} CPU{}, {}, {}, dma-ranges {}, mask {}-bit{}", board.name(),
                     controller::TraitsOf(board).name,
                     board.soc().empty() ? "SoC not given" : board.soc(), cpus,
                     cpus == 1 ? "" : "s", lines, engine, ranges, dma.mask_bits(),
                     board.smmu().present() ? ", behind SMMU" : "");
}

std::string SummarizeWiring(const v1::BoardWiring& w) {
  std::string power;
  if (w.power().has_gpio()) {
    const v1::GpioLine& line = w.power().gpio().power();
    power = fmt::format("power gpio {}:{}{}", line.chip(), line.offset(),
                        line.active_low() ? " (active-low)" : "");
  } else if (w.power().has_pdu()) {
    power = fmt::format("power pdu {} port {}", w.power().pdu().hostname(), w.power().pdu().port());
  } else if (w.power().has_qemu()) {
    const v1::QemuPower& q = w.power().qemu();
    power = fmt::format("power qemu ({} MiB, dom0 {} MiB{})", q.memory_mib(), q.dom0_mem_mib(),
                        q.non_coherent() ? ", non-coherent PCIe" : "");
  } else {
    power = "power none";
  }
  const std::string console =
      w.console().device().empty()
          ? std::string("console pty")
          : fmt::format("console {}@{}", w.console().device(), w.console().baud());
  const v1::UsbEngine& e = w.engine();
  const std::string engine = w.engine_link_case() == v1::BoardWiring::kEngineTcp
                                 ? "engine tcp " + w.engine_tcp()
                                 : fmt::format("engine {:04x}:{:04x}{}", e.vid(), e.pid(),
                                               e.serial().empty() ? "" : " serial " + e.serial());
  return fmt::format("{}, {}, {}, agents {} / {}", power, console, engine, w.dom0_agent(),
                     w.guest_agent());
}

int BoardCheckCommand(const CommandLine& cl, const KnownFault& known_fault, std::ostream& out,
                      std::ostream& err) {
  size_t invalid = 0;
  for (const std::filesystem::path& file : cl.files) {
    const bool ok = DetectKind(file) == FileKind::kFarm ? CheckFarm(file, known_fault, out, err)
                                                        : CheckBoard(file, out, err);
    invalid += ok ? 0 : 1;
  }
  out << fmt::format("board check: {} file{}, {} valid, {} invalid\n", cl.files.size(),
                     cl.files.size() == 1 ? "" : "s", cl.files.size() - invalid, invalid);
  return invalid == 0 ? 0 : 2;
}

}  // namespace dmahil::boardcheck
