// dmahil: the controller CLI (docs/architecture.md §1, §3).
//
//   dmahil run --farm ci/farms/virtual.textproto --out out/ [--seed N] [--parallel N]
//   dmahil bisect --farm F --board B --tree linux=<path> --good G --bad B --out DIR ...
//   dmahil bisect-step ... (for `git bisect run`; controller/bisect/command.h)
//   dmahil matrix --board boards/zcu102-virtual.textproto [--board ...] [--fixtures fixtures/]
//                 [--seeds 100] [--seed S] [--faults a,b] [--parallel N] --out DIR
//   dmahil board check <board or farm file>... (controller/boardcheck/board_check.h)
//   dmahil faults [--json] (controller/run/faults_command.h)
//
// Exit status: 0 every fixture passed, 1 a fixture failed, 2 configuration or
// infrastructure error (a bad farm/board/fixture file, a board that did not come up).
// With --check-expectations (self-test farms with injected faults): 0 iff every board
// met its farm `expect`, 1 otherwise, 2 as above.
// `dmahil matrix` (controller/matrix/matrix.h): 0 iff every fault that can manifest on a
// board was caught in >= 99% of the seeds with the right diagnosis and the clean boards had
// no false positive; 1 otherwise; 2 as above (any ERROR result included).
// `dmahil board check`: 0 iff every file is valid, 2 otherwise.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "common/config.h"
#include "common/farm_expectations.h"
#include "common/validate.h"
#include "controller/bisect/command.h"
#include "controller/boardcheck/board_check.h"
#include "controller/matrix/matrix.h"
#include "controller/report/formats.h"
#include "controller/report/summary.h"
#include "controller/run/board_kind.h"
#include "controller/run/campaign.h"
#include "controller/run/expectations.h"
#include "controller/run/faults_command.h"
#include "sim/faults.h"

namespace {

std::filesystem::path SelfDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::current_path() : exe.parent_path();
}

int Run(const std::string& farm_file, const std::filesystem::path& out,
        std::optional<uint64_t> seed_opt, uint32_t parallel, const std::filesystem::path& vboard,
        bool check_expectations) {
  dmahil::LoadedFarm farm;
  try {
    farm = dmahil::controller::LoadFarmWithKinds(
        farm_file, [](std::string_view id) { return dmahil::sim::FindFault(id) != nullptr; });
    dmahil::controller::ValidateFarmExpectations(
        farm);  // a typo in `expect` is refused before any run
  } catch (const dmahil::ConfigError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  uint64_t seed = seed_opt ? *seed_opt : farm.farm.seed();
  if (!seed_opt && seed == 0)
    seed = std::random_device{}() | (uint64_t{std::random_device{}()} << 32);
  // The seed goes out before anything runs, so even a run that hangs can be reproduced.
  std::cerr << fmt::format("dmahil run: farm {} ({} boards x {} fixtures), seed {}\n",
                           farm.farm.name(), farm.boards.size(), farm.fixtures.size(), seed);

  dmahil::controller::CampaignOptions opt;
  opt.seed = seed;
  opt.out_dir = out;
  opt.parallel = parallel != 0 ? parallel : farm.farm.parallel();
  opt.vboard = vboard.empty() ? SelfDir() / "dmahil-vboard" : vboard;
  std::filesystem::create_directories(out);
  const auto results = dmahil::controller::RunCampaign(farm, opt);

  dmahil::report::RunInfo info{seed, farm.farm.name()};
  for (const dmahil::LoadedBoard& b : farm.boards) {
    info.segments |= dmahil::controller::TraitsOf(b.board).shows_segments;
    info.software.push_back(dmahil::controller::SoftwareOf(b));
  }
  std::vector<std::string> written;
  for (const auto& file : dmahil::report::WriteReports(out, results, info))
    written.push_back(file.string());
  std::cout << dmahil::report::RenderSummary(results, info);
  std::cout << fmt::format("reports: {}; consoles: {}/<board>/console.log\n",
                           fmt::join(written, " "), out.string());

  bool error = false;
  bool failed = false;
  for (const auto& r : results) {
    error |= r.verdict() == dmahil::v1::VERDICT_ERROR;
    failed |= r.verdict() == dmahil::v1::VERDICT_FAIL;
  }
  if (error) return 2;
  if (check_expectations) {
    const auto misses = dmahil::controller::CheckExpectations(farm, results);
    for (const std::string& m : misses) std::cout << "expectation not met: " << m << "\n";
    std::cout << (misses.empty() ? "farm expectations: all met\n" : "");
    return misses.empty() ? 0 : 1;
  }
  return failed ? 1 : 0;
}

uint64_t RandomSeed() { return std::random_device{}() | (uint64_t{std::random_device{}()} << 32); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dmahil: DMA to Xen foreign grant pages, checked line by line on real boards"};
  app.require_subcommand(1);
  CLI::App* run = app.add_subcommand("run", "run every fixture on every board of a farm");
  std::string farm_file;
  std::filesystem::path out = "out";
  std::optional<uint64_t> seed;
  uint32_t parallel = 0;
  std::filesystem::path vboard;
  bool verbose = false;
  bool check_expectations = false;
  run->add_option("--farm", farm_file, "farm file (text format)")->required();
  run->add_option("--out", out, "folder for junit.xml, results.json and console logs");
  run->add_option("--seed", seed, "run seed (default: the farm's, else random; always printed)");
  run->add_option("--parallel", parallel, "boards driven at once (default: the farm's, 0 = all)");
  run->add_option("--vboard", vboard, "dmahil-vboard executable (default: beside dmahil)");
  run->add_flag("--check-expectations", check_expectations,
                "exit 0 iff every board met its farm `expect` (none: all pass), 1 otherwise");

  CLI::App* matrix = app.add_subcommand(
      "matrix",
      "every fixture x every modelled fault (and clean) x every virtual board, over "
      "many seeds: the detection matrix");
  dmahil::matrix::CommandLine mx;
  std::optional<uint64_t> mx_seed;
  std::vector<std::filesystem::path> mx_fixtures;
  matrix->add_option("--board", mx.request.board_files, "virtual board file (repeat for more)")
      ->required();
  matrix->add_option("--fixtures", mx_fixtures,
                     "fixture file or folder of *.textproto, sorted (repeatable; default: "
                     "fixtures/)");
  matrix->add_option("--seeds", mx.request.seeds, "seeded runs per board and fault (n)")
      ->capture_default_str();
  matrix->add_option("--seed", mx_seed, "base seed: run i uses seed + i (default random; printed)");
  matrix
      ->add_option("--faults", mx.request.faults,
                   "comma-separated catalogue ids (default: every modelled fault)")
      ->delimiter(',');
  matrix->add_option("--parallel", mx.parallel, "board runs at once (0: hardware threads)");
  matrix->add_option("--vboard", mx.vboard, "dmahil-vboard executable (default: beside dmahil)");
  matrix->add_option("--out", mx.out_dir, "folder for matrix.json, farm.textproto and runs/")
      ->required();

  dmahil::bisect::BisectCommandLine bisect_cl;
  dmahil::bisect::StepCommandLine step_cl;
  const auto [bisect, bisect_step] = dmahil::bisect::AddBisectCommands(app, bisect_cl, step_cl);

  dmahil::boardcheck::CommandLine board_cl;
  CLI::App* board_check = dmahil::boardcheck::AddBoardCommands(app, board_cl);

  dmahil::run::FaultsCommandLine faults_cl;
  CLI::App* faults = dmahil::run::AddFaultsCommand(app, faults_cl);

  app.add_flag("-v,--verbose", verbose, "log progress to stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; a bad command line is a configuration error: 2, except
    // for bisect-step, where 2 would tell `git bisect run` "bad": 255 aborts it.
    const int rc = app.exit(e);
    if (rc == 0) return 0;
    return std::find(argv, argv + argc, std::string("bisect-step")) != argv + argc ? 255 : 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("dmahil"));
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);
  try {
    if (board_check->parsed())
      return dmahil::boardcheck::BoardCheckCommand(
          board_cl, [](std::string_view id) { return dmahil::sim::FindFault(id) != nullptr; },
          std::cout, std::cerr);
    if (faults->parsed()) return dmahil::run::FaultsCommand(faults_cl, std::cout);
    if (bisect->parsed()) {
      if (bisect_cl.board.vboard.empty()) bisect_cl.board.vboard = SelfDir() / "dmahil-vboard";
      return dmahil::bisect::BisectCommand(bisect_cl, std::cout, std::cerr);
    }
    if (bisect_step->parsed()) {
      if (step_cl.board.vboard.empty()) step_cl.board.vboard = SelfDir() / "dmahil-vboard";
      return dmahil::bisect::BisectStepCommand(step_cl, std::cout, std::cerr);
    }
    if (matrix->parsed()) {
      mx.request.seed = mx_seed ? *mx_seed : RandomSeed();
      mx.request.fixture_paths =
          mx_fixtures.empty() ? std::vector<std::filesystem::path>{"fixtures"} : mx_fixtures;
      if (mx.vboard.empty()) mx.vboard = SelfDir() / "dmahil-vboard";
      return dmahil::matrix::MatrixCommand(mx, std::cout, std::cerr);
    }
    return Run(farm_file, out, seed, parallel, vboard, check_expectations);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
}
