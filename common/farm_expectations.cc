#include "common/farm_expectations.h"

#include <charconv>
#include <optional>
#include <regex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/fault_catalogue.h"

namespace dmahil {
namespace {

// The dmahil.ko fault mask a qemu-xen board boots with: `dmahil.faults=N` (decimal or 0x
// hex) in its dom0_args (the last one wins, as on a kernel command line), as
// qemu/README.md describes; 0 if none.
uint32_t KmodFaults(const v1::FarmBoard& entry) {
  if (!entry.has_wiring() || !entry.wiring().power().has_qemu()) return 0;
  static const std::regex kSwitch(R"((?:^|\s)dmahil\.faults=(0[xX][0-9a-fA-F]+|[0-9]+)(?:\s|$))");
  uint32_t out = 0;
  for (const std::string& args : entry.wiring().power().qemu().dom0_args()) {
    std::smatch m;
    if (!std::regex_search(args, m, kSwitch)) continue;
    const std::string v = m[1].str();
    const bool hex = v.size() > 2 && (v[1] == 'x' || v[1] == 'X');
    out = 0;
    std::from_chars(v.data() + (hex ? 2 : 0), v.data() + v.size(), out, hex ? 16 : 10);
  }
  return out;
}

}  // namespace

std::vector<std::string> FarmExpectationProblems(const LoadedFarm& farm,
                                                 const BoardClassFn& class_of) {
  std::vector<std::string> problems;
  for (size_t i = 0; i < farm.boards.size(); ++i) {
    const LoadedBoard& b = farm.boards[i];
    const std::string& expect = b.entry.expect();
    for (int k = 0; k < b.entry.expect_fixture_size(); ++k) {
      const v1::FixtureExpectation& e = b.entry.expect_fixture(k);
      const std::string efield = fmt::format("board[{}].expect_fixture[{}]", i, k);
      const std::string ewhere = farm.source.Where(efield);
      if (expect.empty())
        problems.push_back(
            fmt::format("{}: {}: a fixture that must fail needs the board's `expect` diagnosis",
                        ewhere, efield));
      bool known = false;
      for (const LoadedFixture& f : farm.fixtures) known |= f.fixture.name() == e.fixture();
      if (!known)
        problems.push_back(fmt::format("{}: {}.fixture: \"{}\" is not a fixture of the farm",
                                       ewhere, efield, e.fixture()));
      if (!e.io_path().empty() && !ParseIoPath(e.io_path()))
        problems.push_back(fmt::format(
            "{}: {}.io_path: \"{}\" is not an I/O path; the known ones are: write, read, "
            "write-and-read",
            ewhere, efield, e.io_path()));
    }
    if (expect.empty()) continue;
    const std::string field = fmt::format("board[{}].expect", i);
    const std::string where = farm.source.Where(field);
    const std::optional<v1::Diagnosis> diagnosis = ParseDiagnosis(expect);
    if (!diagnosis) {
      problems.push_back(fmt::format("{}: {}: \"{}\" is not a diagnosis; the known ones are: {}",
                                     where, field, expect, KnownDiagnosisNames()));
      continue;
    }
    std::vector<FaultId> faults;
    for (const std::string& id : b.entry.faults())
      if (const FaultInfo* f = FindFault(id)) faults.push_back(f->id);
    for (const FaultId id : FaultsOfKmodBits(KmodFaults(b.entry))) faults.push_back(id);
    if (faults.empty()) continue;
    const BoardClass cls = class_of(b.board);
    const std::string_view class_name =
        cls == BoardClass::kCached ? "a board with caches" : "a board without caches";
    std::vector<std::string> expected;  // "<fault> gives <diagnosis>" of each that can manifest
    bool matched = false;
    for (const FaultId id : faults) {
      const FaultInfo& f = Fault(id);
      if (const std::string why = f.cannot_manifest(b.board); !why.empty()) {
        problems.push_back(fmt::format("{}: {}: fault {} cannot manifest on board \"{}\" ({}): {}",
                                       where, field, f.name, b.entry.name(), b.file.string(), why));
        continue;
      }
      expected.push_back(fmt::format("{} gives {}", f.name, DiagnosisKebabName(f.Diagnosis(cls))));
      matched |= f.Diagnosis(cls) == *diagnosis;
    }
    if (!matched && !expected.empty())
      problems.push_back(
          fmt::format("{}: {}: \"{}\" is not what the catalogue says board \"{}\" shows ({}): {}",
                      where, field, expect, b.entry.name(), class_name, fmt::join(expected, "; ")));
  }
  return problems;
}

void ValidateFarmExpectations(const LoadedFarm& farm, const BoardClassFn& class_of) {
  const std::vector<std::string> problems = FarmExpectationProblems(farm, class_of);
  if (!problems.empty()) throw ConfigError(fmt::format("{}", fmt::join(problems, "\n")));
}

}  // namespace dmahil
