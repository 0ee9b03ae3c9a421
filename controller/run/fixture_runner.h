// Runs one fixture on one board (docs/architecture.md §5): grant, map, prime, DMA map, let the
// engine read or write every line at the bus addresses the agent returned — and nowhere else —,
// unmap, verify, and hand the evidence to the oracle.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <string>

#include "controller/device/window_guard.h"
#include "controller/run/agent_client.h"
#include "controller/run/disk_backing.h"
#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/fixture.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::controller {

/// The live connections to one board.
struct BoardLink {
  AgentClient& dom0;
  AgentClient& guest;
  GuardedDeviceClient& device;   // refuses anything outside the current windows
  uint32_t line_size;            // the board's cache line, bytes (from the dom0 agent)
  DiskBacking* disk = nullptr;   // the device side of the domU's PV disk; null: not visible
  std::string disk_unseen = {};  // when `disk` is null, why (ChooseDiskSide); may be empty
};

/// Runs `fixture` on the board behind `link`. seed: the pattern seed of this board and
/// fixture; buffer_id: 16-bit id unique within the run (canaries use buffer_id + 1).
/// First asks NotApplicableReason (applicability.h): a fixture that cannot run on this
/// board is VERDICT_NOT_APPLICABLE with the reason in `detail`, before anything is
/// allocated. Iterates up to fixture.iterations and stops at the first failing iteration. Never
/// throws for agent, device or guard errors: those give VERDICT_ERROR with the message.
/// Buffers are released before returning whenever the agents still answer.
v1::FixtureResult RunFixture(BoardLink& link, const v1::Board& board, const std::string& board_name,
                             const v1::Fixture& fixture, uint64_t seed, uint32_t buffer_id);

/// The iteration loop of every fixture kind: `iterate(it)` runs iteration `it` (1-based)
/// and returns the oracle's result for it; stops at the first that does not pass, else
/// after fixture.iterations(). Adds each iteration's mismatching and checked lines to
/// *mismatching and *checked. Returns the failing or last result with board, fixture,
/// iterations and failed_iteration set. Exceptions from `iterate` propagate.
v1::FixtureResult IterateFixture(const std::string& board_name, const v1::Fixture& fixture,
                                 const std::function<v1::FixtureResult(uint32_t)>& iterate,
                                 uint64_t* mismatching, uint64_t* checked);

/// Makes `result` (board and fixture already set) VERDICT_ERROR with `error`'s message,
/// then calls `release` to give back what the run holds; a release that throws too is
/// logged, never thrown. For a fixture kind's runner when an agent, device or guard call
/// fails mid-run.
void ErrorResult(const std::exception& error, const std::function<void()>& release,
                 v1::FixtureResult* result);

}  // namespace dmahil::controller
