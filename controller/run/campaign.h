// A nightly campaign (docs/architecture.md §11): every fixture of a farm on every board, boards in
// parallel, each board powered on, driven, powered off; results in farm order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/validate.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

struct BoardLink;

struct CampaignOptions {
  uint64_t seed = 1;                 // the run seed: reproduces virtual-board runs exactly
  std::filesystem::path out_dir;     // artifacts: <out>/<board>/console.log
  std::filesystem::path vboard;      // the dmahil-vboard executable
  uint32_t parallel = 0;             // boards driven at once; 0: all
  uint32_t boot_timeout_ms = 15000;  // virtual board power-on to agents answering
};

/// The seed a board's model and patterns use: a stable hash (FNV-1a) of the board name
/// mixed with the run seed, so adding a board does not change the others' results.
uint64_t BoardSeed(uint64_t run_seed, const std::string& board_name);

/// One VERDICT_ERROR result with detail `why` for each fixture of `farm` on `board`.
std::vector<v1::FixtureResult> AllError(const LoadedFarm& farm, const std::string& board,
                                        const std::string& why);

/// The pattern seed of fixture `index` (farm order) on a board seeded `board_seed`.
uint64_t FixtureSeed(uint64_t board_seed, size_t index);

/// Runs the farm's fixtures in order on a board that is up (`link`). A fixture that loses
/// the agents (UNAVAILABLE, DEADLINE_EXCEEDED) ends the run: the rest are ERROR "board
/// lost". `board_lost`, if given, is asked after each fixture: a non-empty answer (e.g. a
/// console crash with its excerpt) turns that fixture into an ERROR with it and ends the
/// run the same way.
std::vector<v1::FixtureResult> RunFixtures(const LoadedFarm& farm, const LoadedBoard& board,
                                           BoardLink& link, uint64_t board_seed,
                                           const std::function<std::string()>& board_lost = {});

/// Runs the campaign: each board through the one board runner (board_runner.h) with the
/// BoardKind its kind's registry entry makes (board_kind.h). Never throws for board or
/// fixture problems: a board that does not come up, or whose kind is not registered, gives
/// VERDICT_ERROR for each of its fixtures, with the reason.
std::vector<v1::FixtureResult> RunCampaign(const LoadedFarm& farm, const CampaignOptions& options);

}  // namespace dmahil::controller
