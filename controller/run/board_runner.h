// The one board runner (docs/architecture.md §4): every board kind — virtual, qemu-xen,
// hardware — is driven the same way through its BoardKind (board_kind.h): power, console,
// agents, engine, a health check, the fixtures, power off.
#pragma once

#include <cstddef>
#include <vector>

#include "common/validate.h"
#include "controller/run/board_kind.h"
#include "controller/run/campaign.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// Lines of <out>/<board>/console.log quoted in a health-check error.
inline constexpr size_t kConsoleTailLines = 40;

/// Runs every fixture of `farm` on `board` through `kind`:
///  1. opens the power switch, the console (logged to <out>/<board>/console.log) and the
///     engine; every one that fails is named, so a farm with a missing GPIO chip, tty and
///     USB engine says all three at once;
///  2. the health check: power-cycle; the console shows its agent_ready line within the
///     kind's boot timeout (a kernel or Xen crash ends the wait with its excerpt, and so
///     does a board process that exits: PowerSwitch::Failure); both agents answer and the
///     engine answers Info within what is left of it (retried when the kind says the
///     engine may lag); dom0's view of the engine's coherency matches the board file; a
///     non-coherent board where stale lines cannot show (BoardKindTraits) has the
///     maintenance audit; and the known-good fixture (board.health_fixture, else the
///     farm's first) gives a verdict. A FAIL there is the code under test failing, not the
///     board: it is logged and the fixtures run (their verdicts say what is wrong); an
///     ERROR makes the board offline. A health-check error quotes the last
///     kConsoleTailLines lines of console.log;
///  3. the fixtures, in farm order; after each, a console crash ends that fixture as an
///     infrastructure error with the excerpt, and the rest are not attempted;
///  4. power off (also on every error path).
/// A board that fails 1 or 2 is offline for this run: every fixture is VERDICT_ERROR with
/// "board offline: ..." and the reason; it never produces a FAIL. Never throws.
std::vector<v1::FixtureResult> RunBoard(const LoadedFarm& farm, const LoadedBoard& board,
                                        const CampaignOptions& options, BoardKind& kind);

}  // namespace dmahil::controller
