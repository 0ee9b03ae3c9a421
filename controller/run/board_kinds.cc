// The board-kind registry: the one place that maps board.proto's BoardKind values to the
// code that runs such a board (board_kind.h). Add a kind here with one line.
#include <map>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "controller/run/board_kind.h"
#include "controller/run/kinds/lab_kinds.h"
#include "controller/run/kinds/virtual_kind.h"

namespace dmahil::controller {
namespace {

struct Registry {
  std::mutex mu;
  std::map<int, BoardKindEntry> kinds;
};

Registry& TheRegistry() {
  static Registry r;
  static std::once_flag builtins;
  std::call_once(builtins, [] {
    r.kinds.emplace(v1::BOARD_KIND_VIRTUAL, kinds::VirtualKindEntry());
    r.kinds.emplace(v1::BOARD_KIND_QEMU_XEN, kinds::QemuXenKindEntry());
    r.kinds.emplace(v1::BOARD_KIND_HARDWARE, kinds::HardwareKindEntry());
  });
  return r;
}

}  // namespace

BoardKind::~BoardKind() = default;

void RegisterBoardKind(int kind, BoardKindEntry entry) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  if (!r.kinds.emplace(kind, std::move(entry)).second)
    throw std::logic_error(fmt::format("board kind {} is registered already", kind));
}

const BoardKindEntry* FindBoardKind(int kind) {
  Registry& r = TheRegistry();
  std::lock_guard lock(r.mu);
  const auto it = r.kinds.find(kind);
  return it == r.kinds.end() ? nullptr : &it->second;  // entries are never removed
}

BoardKindTraits TraitsOf(const v1::Board& board) {
  const BoardKindEntry* entry = FindBoardKind(board.kind());
  if (entry != nullptr) return entry->traits;
  BoardKindTraits unknown;
  unknown.name = "unknown";
  return unknown;
}

}  // namespace dmahil::controller
