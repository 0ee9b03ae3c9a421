#include "controller/run/fixture_kinds.h"

#include <map>

#include <fmt/format.h>

#include "controller/run/pv_block_runner.h"

namespace dmahil::controller {

const FixtureKindEntry* FindFixtureKind(v1::FixtureKind kind) {
  static const std::map<v1::FixtureKind, FixtureKindEntry> kinds = {
      {v1::FIXTURE_KIND_ENGINE, {"engine", &RunFixture}},
      {v1::FIXTURE_KIND_PV_BLOCK, {"pv-block", &RunPvBlockFixture}},
  };
  const auto it = kinds.find(kind);
  return it == kinds.end() ? nullptr : &it->second;
}

v1::FixtureResult RunFixtureOfKind(BoardLink& link, const v1::Board& board,
                                   const std::string& board_name, const v1::Fixture& fixture,
                                   uint64_t seed, uint32_t buffer_id) {
  if (const FixtureKindEntry* entry = FindFixtureKind(fixture.kind()); entry != nullptr)
    return entry->run(link, board, board_name, fixture, seed, buffer_id);
  v1::FixtureResult r;
  r.set_board(board_name);
  r.set_fixture(fixture.name());
  r.set_verdict(v1::VERDICT_ERROR);
  r.set_detail(fmt::format("fixture kind {} has no runner in this controller",
                           static_cast<int>(fixture.kind())));
  return r;
}

}  // namespace dmahil::controller
