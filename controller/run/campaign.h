// A nightly campaign (DESIGN §9): every fixture of a farm on every board, boards in
// parallel, each board powered on, driven, powered off; results in farm order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/validate.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

struct CampaignOptions {
  uint64_t seed = 1;                 // the run seed: reproduces virtual-board runs exactly
  std::filesystem::path out_dir;     // artifacts: <out>/<board>/console.log
  std::filesystem::path vboard;      // the dmahil-vboard executable
  uint32_t parallel = 0;             // boards driven at once; 0: all
  uint32_t boot_timeout_ms = 15000;  // board power-on to agents answering
};

/// The seed a board's model and patterns use: a stable hash (FNV-1a) of the board name
/// mixed with the run seed, so adding a board does not change the others' results.
uint64_t BoardSeed(uint64_t run_seed, const std::string& board_name);

/// Runs the campaign. Never throws for board or fixture problems: a board that does not
/// come up gives VERDICT_ERROR for each of its fixtures, with the reason.
std::vector<v1::FixtureResult> RunCampaign(const LoadedFarm& farm, const CampaignOptions& options);

}  // namespace dmahil::controller
