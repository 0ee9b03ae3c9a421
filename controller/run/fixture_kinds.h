// Fixture kinds (docs/architecture.md §13): what drives a fixture's DMA — today the engine
// fixtures (fixture_runner.h). A new kind (e.g. PV block I/O through real drivers) is one
// runner file plus one line in fixture_kinds.cc; the campaign and the health check call
// every kind through RunFixtureOfKind.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "controller/run/fixture_runner.h"
#include "dmahil/v1/fixture.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// Runs one fixture of a kind; the contract of RunFixture (fixture_runner.h): never throws
/// for board errors, gives PASS, FAIL, ERROR or NOT_APPLICABLE with the evidence.
using FixtureKindRunner = v1::FixtureResult (*)(BoardLink& link, const v1::Board& board,
                                                const std::string& board_name,
                                                const v1::Fixture& fixture, uint64_t seed,
                                                uint32_t buffer_id);

/// One registered fixture kind.
struct FixtureKindEntry {
  std::string_view name;  // e.g. "engine"
  FixtureKindRunner run;
};

/// The entry for `kind`, or nullptr if no runner is registered for it.
const FixtureKindEntry* FindFixtureKind(v1::FixtureKind kind);

/// Runs `fixture` with its kind's runner; a kind without a runner is VERDICT_ERROR saying
/// so (a fixture file newer than this controller).
v1::FixtureResult RunFixtureOfKind(BoardLink& link, const v1::Board& board,
                                   const std::string& board_name, const v1::Fixture& fixture,
                                   uint64_t seed, uint32_t buffer_id);

}  // namespace dmahil::controller
