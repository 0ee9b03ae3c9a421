#include "controller/run/campaign.h"

#include <atomic>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/seed_mix.h"
#include "controller/run/board_kind.h"
#include "controller/run/board_runner.h"
#include "controller/run/fixture_kinds.h"

namespace dmahil::controller {
namespace {

std::vector<v1::FixtureResult> RunOneBoard(const LoadedFarm& farm, const LoadedBoard& lb,
                                           const CampaignOptions& opt) {
  const BoardKindEntry* entry = FindBoardKind(lb.board.kind());
  if (entry == nullptr)
    return AllError(
        farm, lb.entry.name(),
        fmt::format("board kind {} is not supported by this controller",
                    v1::BoardKind_IsValid(lb.board.kind()) ? v1::BoardKind_Name(lb.board.kind())
                                                           : std::to_string(lb.board.kind())));
  try {
    const std::unique_ptr<BoardKind> kind = entry->make(lb, opt);
    return RunBoard(farm, lb, opt, *kind);
  } catch (const std::exception& e) {  // RunBoard never throws; making the kind may
    spdlog::error("{}: {}", lb.entry.name(), e.what());
    return AllError(farm, lb.entry.name(), fmt::format("board did not come up: {}", e.what()));
  }
}

}  // namespace

std::vector<v1::FixtureResult> AllError(const LoadedFarm& farm, const std::string& board,
                                        const std::string& why) {
  std::vector<v1::FixtureResult> results;
  for (const LoadedFixture& f : farm.fixtures) {
    v1::FixtureResult r;
    r.set_board(board);
    r.set_fixture(f.fixture.name());
    r.set_verdict(v1::VERDICT_ERROR);
    r.set_detail(why);
    results.push_back(std::move(r));
  }
  return results;
}

uint64_t FixtureSeed(uint64_t board_seed, size_t index) {
  return MixSeed(board_seed ^ (index + 1));
}

std::vector<v1::FixtureResult> RunFixtures(const LoadedFarm& farm, const LoadedBoard& lb,
                                           BoardLink& link, uint64_t board_seed,
                                           const std::function<std::string()>& board_lost) {
  const std::string& name = lb.entry.name();
  std::vector<v1::FixtureResult> results;
  std::string lost;  // set once the board stops answering: the rest is not attempted
  for (size_t i = 0; i < farm.fixtures.size(); ++i) {
    const v1::Fixture& fx = farm.fixtures[i].fixture;
    if (!lost.empty()) {
      v1::FixtureResult r;
      r.set_board(name);
      r.set_fixture(fx.name());
      r.set_verdict(v1::VERDICT_ERROR);
      r.set_detail("board lost earlier in the run: " + lost);
      results.push_back(std::move(r));
      continue;
    }
    const uint32_t buffer_id = static_cast<uint32_t>(2 * i + 1);
    results.push_back(
        RunFixtureOfKind(link, lb.board, name, fx, FixtureSeed(board_seed, i), buffer_id));
    v1::FixtureResult& r = results.back();
    if (r.verdict() == v1::VERDICT_ERROR &&
        (r.detail().find("UNAVAILABLE") != std::string::npos ||
         r.detail().find("DEADLINE_EXCEEDED") != std::string::npos))
      lost = r.detail();
    if (board_lost) {
      if (std::string why = board_lost(); !why.empty()) {
        // The board crashed under this fixture: whatever it saw, it is no verdict.
        r.set_verdict(v1::VERDICT_ERROR);
        r.set_detail(why);
        lost = why;
      }
    }
    spdlog::info("{} / {}: {}", name, fx.name(), v1::Verdict_Name(r.verdict()));
  }
  return results;
}

uint64_t BoardSeed(uint64_t run_seed, const std::string& board_name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : board_name) h = (h ^ c) * 0x100000001b3ULL;
  return MixSeed(run_seed ^ h);
}

std::vector<v1::FixtureResult> RunCampaign(const LoadedFarm& farm, const CampaignOptions& opt) {
  const size_t n = farm.boards.size();
  std::vector<std::vector<v1::FixtureResult>> per_board(n);
  const size_t workers = opt.parallel == 0 ? n : std::min<size_t>(opt.parallel, n);
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++)
        per_board[i] = RunOneBoard(farm, farm.boards[i], opt);
    });
  for (std::thread& t : threads) t.join();
  std::vector<v1::FixtureResult> all;
  for (auto& v : per_board)
    for (auto& r : v) all.push_back(std::move(r));
  return all;
}

}  // namespace dmahil::controller
