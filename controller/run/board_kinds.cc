// The board-kind registry: the one place that maps board.proto's BoardKind values to the
// code that runs such a board (board_kind.h) and to what the kind needs of its board file
// and farm entry. Add a kind here with one line.
#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/farm_expectations.h"
#include "controller/run/board_kind.h"
#include "controller/run/kinds/lab_kinds.h"
#include "controller/run/kinds/virtual_kind.h"

namespace dmahil::controller {
namespace {

struct Registry {
  std::mutex mu;
  std::map<int, BoardKindEntry> kinds;
};

// What a kind's traits imply for its farm entry (docs/architecture.md §4): faults and
// revision_dir only for kinds that run the model, wiring only for wired kinds. A wired kind
// without wiring is its own check_farm_entry's to report (it knows what its wiring needs).
void CheckEntryByTraits(const BoardKindTraits& traits, const LoadedBoard& b,
                        FarmBoardContext& ctx) {
  const v1::FarmBoard& entry = b.entry;
  const SourceMap& farm = ctx.problems.source();
  const auto model = [](const BoardKindTraits& t) { return t.runs_model; };
  if (entry.faults_size() > 0 && !traits.runs_model)
    ctx.errors.push_back(fmt::format(
        "{}: board \"{}\" has faults, but faults can only be injected into virtual boards ({} is "
        "not {})",
        farm.Where(ctx.Field(".faults")), entry.name(), b.file.string(), KindNames(model, "or")));
  if (entry.has_wiring() && traits.wiring == BoardKindTraits::Wiring::kNone)
    ctx.errors.push_back(fmt::format(
        "{}: board \"{}\" has wiring, but only {} boards are wired ({} is {})",
        farm.Where(ctx.Field(".wiring")), entry.name(),
        KindNames(
            [](const BoardKindTraits& t) { return t.wiring != BoardKindTraits::Wiring::kNone; },
            "and"),
        b.file.string(), v1::BoardKind_Name(b.board.kind())));
  if (!entry.revision_dir().empty() && !traits.runs_model)
    ctx.errors.push_back(fmt::format(
        "{}: board \"{}\" has a revision_dir, but only virtual boards read revision files ({} "
        "is not {})",
        farm.Where(ctx.Field(".revision_dir")), entry.name(), b.file.string(),
        KindNames(model, "or")));
}

// `entry` with the traits' rules in front of its own farm-entry rules.
BoardKindEntry WithTraitRules(BoardKindEntry entry) {
  entry.rules.check_farm_entry = [traits = entry.traits, own = entry.rules.check_farm_entry](
                                     LoadedBoard& b, FarmBoardContext& ctx) {
    CheckEntryByTraits(traits, b, ctx);
    if (own) own(b, ctx);
  };
  return entry;
}

Registry& TheRegistry() {
  static Registry r;
  static std::once_flag builtins;
  std::call_once(builtins, [] {
    r.kinds.emplace(v1::BOARD_KIND_VIRTUAL, WithTraitRules(kinds::VirtualKindEntry()));
    r.kinds.emplace(v1::BOARD_KIND_QEMU_XEN, WithTraitRules(kinds::QemuXenKindEntry()));
    r.kinds.emplace(v1::BOARD_KIND_HARDWARE, WithTraitRules(kinds::HardwareKindEntry()));
  });
  return r;
}

}  // namespace

BoardKind::~BoardKind() = default;

void RegisterBoardKind(int kind, BoardKindEntry entry) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  if (!r.kinds.emplace(kind, WithTraitRules(std::move(entry))).second)
    throw std::logic_error(fmt::format("board kind {} is registered already", kind));
}

const BoardKindEntry* FindBoardKind(int kind) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  const auto it = r.kinds.find(kind);
  return it == r.kinds.end() ? nullptr : &it->second;  // entries are never removed
}

report::BoardSoftware SoftwareOf(const LoadedBoard& board) {
  const BoardKindEntry* entry = FindBoardKind(board.board.kind());
  report::BoardSoftware out;
  if (entry != nullptr && entry->software) out = entry->software(board);
  out.board = board.entry.name();
  return out;
}

BoardKindTraits TraitsOf(const v1::Board& board) {
  const BoardKindEntry* entry = FindBoardKind(board.kind());
  if (entry != nullptr) return entry->traits;
  BoardKindTraits unknown;
  unknown.name = "unknown";
  return unknown;
}

std::string KindNames(const std::function<bool(const BoardKindTraits&)>& which,
                      std::string_view conjunction) {
  std::vector<std::string> names;
  {
    Registry& r = TheRegistry();
    std::lock_guard lock(r.mu);
    for (const auto& [kind, entry] : r.kinds) {
      if (!which(entry.traits)) continue;
      const std::string name = v1::BoardKind_Name(static_cast<v1::BoardKind>(kind));
      names.push_back(name.empty() ? fmt::format("kind {}", kind) : name);
    }
  }
  std::sort(names.begin(), names.end());
  if (names.size() < 2) return fmt::format("{}", fmt::join(names, ""));
  return fmt::format("{} {} {}", fmt::join(names.begin(), names.end() - 1, ", "), conjunction,
                     names.back());
}

const BoardRules* RulesOfKind(int kind) {
  const BoardKindEntry* entry = FindBoardKind(kind);
  return entry != nullptr ? &entry->rules : nullptr;
}

v1::Board LoadBoardWithKind(const std::filesystem::path& file, SourceMap* source) {
  return LoadBoard(file, source, RulesOfKind);
}

LoadedFarm LoadFarmWithKinds(const std::filesystem::path& file, const KnownFault& known_fault) {
  return LoadFarm(file, known_fault, RulesOfKind);
}

BoardClass BoardClassOf(const v1::Board& board) {
  return TraitsOf(board).stale_lines_observable ? BoardClass::kCached : BoardClass::kCacheless;
}

void ValidateFarmExpectations(const LoadedFarm& farm) {
  dmahil::ValidateFarmExpectations(farm, &BoardClassOf);
}

}  // namespace dmahil::controller
