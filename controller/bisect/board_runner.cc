#include "controller/bisect/board_runner.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "controller/bisect/process.h"
#include "controller/report/names.h"
#include "controller/run/board_kind.h"
#include "controller/run/campaign.h"

namespace dmahil::bisect {

uint64_t RunSeed(uint64_t seed, const std::string& rev, uint32_t run_index) {
  return controller::BoardSeed(seed + 0x9E3779B97F4A7C15ULL * (uint64_t{run_index} + 1), rev);
}

namespace {

/// Milliseconds since `start` on the steady clock.
uint64_t MsSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

/// The campaign options of one run (the seed is set per attempt).
controller::CampaignOptions RunOptions(const BoardRunnerConfig& config,
                                       const std::filesystem::path& out_dir) {
  controller::CampaignOptions opt;
  opt.out_dir = out_dir;
  opt.vboard = config.vboard;
  opt.parallel = 1;
  opt.boot_timeout_ms = config.boot_timeout_ms;
  return opt;
}

}  // namespace

BoardRevisionRunner::BoardRevisionRunner(BoardRunnerConfig config) : config_(std::move(config)) {
  if (config_.farm.boards.size() != 1)
    throw BisectError(
        fmt::format("a bisection runs on one board, not {}", config_.farm.boards.size()));
  LoadedBoard& board = config_.farm.boards[0];
  const controller::BoardKindEntry* kind = controller::FindBoardKind(board.board.kind());
  if (kind == nullptr)
    throw BisectError(fmt::format("board {}: its kind {} is not registered", board.entry.name(),
                                  static_cast<int>(board.board.kind())));
  uses_deploy_dir_ = kind->traits.runs_model;
  if (uses_deploy_dir_) board.revision_dir = config_.deploy_dir;
  // Asks the kind as the board runner will: making a kind opens nothing.
  const controller::CampaignOptions opt = RunOptions(config_, config_.out_dir);
  boot_timeout_ms_ = kind->make(board, opt)->BootTimeoutMs();
  spdlog::info("board {} ({}): boot timeout {} s{}", board.entry.name(), kind->traits.name,
               boot_timeout_ms_ / 1000.0,
               uses_deploy_dir_ ? ", revision folder " + config_.deploy_dir.string() : "");
}

std::filesystem::path BoardRevisionRunner::StepDir(const std::string& rev) const {
  return config_.out_dir / "steps" / rev.substr(0, 12);
}

Preparation BoardRevisionRunner::BuildAndDeploy(const TreeCheckout& tree, const std::string& rev) {
  if (tree.git) tree.git->CheckoutWorktree(tree.worktree, rev);
  const std::filesystem::path dir = StepDir(rev);
  std::filesystem::create_directories(dir);
  if (uses_deploy_dir_) std::filesystem::create_directories(config_.deploy_dir);
  const std::map<std::string, std::string> env = {
      {"DMAHIL_TREE", tree.name},
      {"DMAHIL_REV", rev},
      {"DMAHIL_WORKTREE", std::filesystem::absolute(tree.worktree).string()},
      {"DMAHIL_BOARD", config_.farm.boards[0].entry.name()},
      {"DMAHIL_DEPLOY_DIR",
       uses_deploy_dir_ ? std::filesystem::absolute(config_.deploy_dir).string() : ""},
      {"DMAHIL_STEP_DIR", std::filesystem::absolute(dir).string()}};
  // Runs one hook; its wall time goes to `ms`.
  const auto hook = [&](const char* what, const std::string& command, uint64_t& ms) {
    if (command.empty()) return 0;
    const std::filesystem::path log = dir / fmt::format("{}-{}.log", tree.name, what);
    const auto start = std::chrono::steady_clock::now();
    const int status = RunLogged(command, tree.worktree, env, log);
    ms = MsSince(start);
    spdlog::info("{} {} hook for {}: exit {} after {:.1f} s", tree.name, what, rev.substr(0, 12),
                 status, static_cast<double>(ms) / 1e3);
    return status;
  };
  Preparation p;
  const int built = hook("build", config_.hooks.build, p.build_ms);
  if (built == 125) {
    p.prepared = Prepared::kSkip;
    return p;
  }
  if (built != 0)
    throw BisectError(fmt::format("{} build hook failed for {} (exit {}): see {}", tree.name, rev,
                                  built, (dir / (tree.name + "-build.log")).string()));
  const int deployed = hook("deploy", config_.hooks.deploy, p.deploy_ms);
  if (deployed != 0)
    throw BisectError(fmt::format("{} deploy hook failed for {} (exit {}): see {}", tree.name, rev,
                                  deployed, (dir / (tree.name + "-deploy.log")).string()));
  return p;
}

Preparation BoardRevisionRunner::Prepare(const std::string& rev) {
  Preparation pin;
  if (config_.pin && !pin_deployed_) {
    pin = BuildAndDeploy(*config_.pin, config_.pin_rev);
    if (pin.skip())
      throw BisectError(fmt::format("the pinned {} revision {} cannot be built (exit 125)",
                                    config_.pin->name, config_.pin_rev));
    pin_deployed_ = true;
  }
  Preparation p = BuildAndDeploy(config_.tree, rev);
  p.build_ms += pin.build_ms;
  p.deploy_ms += pin.deploy_ms;
  return p;
}

RunOutcome BoardRevisionRunner::Run(const std::string& rev, uint32_t run_index) {
  controller::CampaignOptions opt = RunOptions(config_, StepDir(rev));
  std::string last_error;
  uint64_t board_ms = 0;  // every attempt's board time counts
  for (uint32_t attempt = 0; attempt <= config_.error_retries; ++attempt) {
    // Another seed per attempt: on a virtual board the same seed would fail the same way.
    opt.seed = RunSeed(config_.seed + attempt, rev, run_index);
    const auto start = std::chrono::steady_clock::now();
    const auto results = controller::RunCampaign(config_.farm, opt);
    board_ms += MsSince(start);
    RunOutcome out;
    last_error.clear();
    for (const v1::FixtureResult& r : results) {
      if (r.verdict() == v1::VERDICT_ERROR && last_error.empty())
        last_error = fmt::format("{}: {}", r.fixture(), r.detail());
      if (r.verdict() == v1::VERDICT_FAIL)
        out.failures.push_back(
            fmt::format("{}: {}", r.fixture(), report::DiagnosisName(r.diagnosis())));
    }
    std::sort(out.failures.begin(), out.failures.end());
    out.board_ms = board_ms;
    if (out.detected() || last_error.empty()) return out;
    spdlog::warn("{} run {} (seed {}): {}; trying again", rev.substr(0, 12), run_index, opt.seed,
                 last_error);
  }
  throw BisectError(fmt::format(
      "board {} gave no answer for {} run {} after {} attempts: {}; console: {}/{}/console.log",
      config_.farm.boards[0].entry.name(), rev, run_index, config_.error_retries + 1, last_error,
      StepDir(rev).string(), config_.farm.boards[0].entry.name()));
}

}  // namespace dmahil::bisect
