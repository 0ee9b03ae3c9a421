// dmahil-bisect-bench: our sequential bisection against the fixed-3-runs-per-step rule
// (OSSTest / KernelCI style), on the same trials (criteria 1 and 2).
//
//   dmahil-bisect-bench --out DIR [--trials 100] [--commits 300] [--boot-rate 0.3]
//                       [--seed S] [--parallel 2] [--model-trials 10000] [--model-only]
//
// Two sections, each printing both rules side by side (accuracy, stated confidence, runs,
// board time, and the runs ratio against the fixed rule measured in the same run):
//  - model: the engine on simulated histories (controller/bisect/simulated_history.h), a
//    bad revision detecting with probability --boot-rate per run; many trials, seconds;
//    the culprit drawn uniformly, then fixed at commit 1, the middle and the bad end (the
//    stated confidence must hold wherever the culprit is).
//  - virtual farm: the real thing end to end. Trial t makes a synthetic git history
//    (demo/bisect/make-history.sh) with the culprit at a seeded uniform position turning on
//    cache-flush-local-addr at --boot-rate, then bisects it with `dmahil bisect`'s engine,
//    hooks and board runner on the demo farm's zcu102 (fixture foreign-to-device), once per
//    rule, with the same seed.
// Exit 0 iff, in every section run, the sequential rule named the right commit in >= 95%
// of trials and its mean stated confidence lies at or below the 95% upper bound of the
// measured accuracy (the statement is honest); 1 otherwise; 2 on a setup error.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "controller/bisect/board_runner.h"
#include "controller/bisect/command.h"
#include "controller/bisect/process.h"
#include "controller/bisect/simulated_history.h"
#include "sim/faults.h"

namespace {

using dmahil::bisect::BisectOptions;
using dmahil::bisect::BisectResult;
using dmahil::bisect::Rule;

struct Tally {
  uint32_t trials = 0;
  uint32_t right = 0;
  double stated_sum = 0;
  double stated_min = 1;
  uint64_t runs = 0;
  uint64_t board_ms = 0;

  void Add(const BisectResult& r, bool correct) {
    ++trials;
    right += correct;
    stated_sum += r.confidence;
    stated_min = std::min(stated_min, r.confidence);
    runs += r.total_runs;
    board_ms += r.board_ms;
  }
  double Accuracy() const { return trials ? static_cast<double>(right) / trials : 0; }
  /// Wilson score interval at 95% for the accuracy.
  std::pair<double, double> Interval() const {
    const double n = trials;
    const double p = Accuracy();
    const double z = 1.96;
    const double centre = (p + z * z / (2 * n)) / (1 + z * z / n);
    const double half = z * std::sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n);
    return {centre - half, centre + half};
  }
};

/// Prints the two rules side by side; returns true iff the sequential rule met the bar.
bool PrintSection(const std::string& title, const Tally& seq, const Tally& fixed, bool timed) {
  const auto row = [](const std::string& what, const std::string& a, const std::string& b) {
    std::cout << fmt::format("  {:<28} {:<28} {}\n", what, a, b);
  };
  const auto acc = [](const Tally& t) {
    const auto [lo, hi] = t.Interval();
    return fmt::format("{}/{} = {:.3f} [{:.3f}, {:.3f}]", t.right, t.trials, t.Accuracy(), lo, hi);
  };
  std::cout << "\n== " << title << " ==\n";
  row("", "sequential", "fixed 3 runs/step");
  row("right commit [95% interval]", acc(seq), acc(fixed));
  row("stated confidence",
      fmt::format("mean {:.4f}, min {:.4f}", seq.stated_sum / seq.trials, seq.stated_min),
      "not stated");
  row("runs in total", fmt::format("{}", seq.runs), fmt::format("{}", fixed.runs));
  row("runs per bisection", fmt::format("{:.1f}", static_cast<double>(seq.runs) / seq.trials),
      fmt::format("{:.1f}", static_cast<double>(fixed.runs) / fixed.trials));
  row("runs vs the fixed rule",
      fmt::format("{:.2f}x", static_cast<double>(seq.runs) / static_cast<double>(fixed.runs)),
      "1.00x");
  if (timed)
    row("board time", fmt::format("{:.1f} s", static_cast<double>(seq.board_ms) / 1e3),
        fmt::format("{:.1f} s", static_cast<double>(fixed.board_ms) / 1e3));
  const double stated = seq.stated_sum / seq.trials;
  const bool accurate = seq.Accuracy() >= 0.95;
  const bool honest = stated <= seq.Interval().second;
  std::cout << fmt::format("  sequential right in >= 95% of trials: {}\n", accurate ? "yes" : "NO");
  std::cout << fmt::format(
      "  stated confidence honest (mean stated {:.4f} {} accuracy, upper bound {:.4f}): {}\n",
      stated, stated <= seq.Accuracy() ? "<=" : ">", seq.Interval().second, honest ? "yes" : "NO");
  return accurate && honest;
}

/// The model section at one culprit placement: `culprit` 0 draws it uniformly.
bool ModelSection(uint32_t trials, uint32_t commits, double q, uint64_t seed, size_t culprit) {
  Tally seq;
  Tally fixed;
  std::mt19937_64 pick(seed);
  for (uint32_t t = 0; t < trials; ++t) {
    const size_t c = culprit != 0 ? culprit : 1 + pick() % commits;
    const uint64_t run_seed = pick();
    for (const Rule rule : {Rule::kSequential, Rule::kFixedRuns}) {
      dmahil::bisect::SimulatedHistory h(commits, c, q, run_seed);
      BisectOptions o;
      o.rule = rule;
      const BisectResult r = dmahil::bisect::Bisect(h.revs(), h, o);
      (rule == Rule::kSequential ? seq : fixed).Add(r, r.first_bad == c);
    }
  }
  const std::string where =
      culprit == 0 ? "culprit uniform" : fmt::format("culprit at commit {}", culprit);
  return PrintSection(fmt::format("model: {} trials, {} commits, {}, detection rate {} per run",
                                  trials, commits, where, q),
                      seq, fixed, false);
}

struct FarmTrial {
  std::filesystem::path dir;
  std::vector<std::string> revs;
  size_t culprit = 0;
  uint64_t seed = 0;
};

bool FarmSection(uint32_t trials, uint32_t commits, double q, uint64_t seed, uint32_t parallel,
                 const std::filesystem::path& out, const std::filesystem::path& vboard) {
  const std::filesystem::path src = DMAHIL_SOURCE_DIR;
  dmahil::bisect::BoardOptions board;
  board.farm = src / "demo/bisect/farm.textproto";
  board.board = "zcu102";
  board.fixtures = {"foreign-to-device"};
  const dmahil::LoadedFarm farm = dmahil::bisect::LoadBoardFarm(board);

  std::mt19937_64 pick(seed);
  std::vector<FarmTrial> plan(trials);
  for (uint32_t t = 0; t < trials; ++t) {
    plan[t].dir = out / fmt::format("trial-{:03}", t);
    plan[t].culprit = 1 + pick() % commits;
    plan[t].seed = pick();
  }
  Tally seq;
  Tally fixed;
  std::mutex mu;
  std::atomic<uint32_t> next{0};
  std::atomic<bool> failed{false};
  const auto worker = [&] {
    for (uint32_t t = next++; t < trials && !failed; t = next++) {
      FarmTrial& trial = plan[t];
      try {
        std::filesystem::remove_all(trial.dir);
        std::filesystem::create_directories(trial.dir);
        const auto made = dmahil::bisect::RunCapture(
            "bash", {(src / "demo/bisect/make-history.sh").string(), (trial.dir / "linux").string(),
                     "--commits", std::to_string(commits), "--culprit",
                     std::to_string(trial.culprit), "--boot-rate", fmt::format("{}", q)});
        if (made.exit_code != 0) throw dmahil::bisect::BisectError(made.err);
        const dmahil::bisect::GitTree git(trial.dir / "linux");
        const auto revs = git.FirstParentPath("good", "bad");
        for (const Rule rule : {Rule::kSequential, Rule::kFixedRuns}) {
          const std::string name = rule == Rule::kSequential ? "sequential" : "fixed";
          dmahil::bisect::BoardRunnerConfig rc;
          rc.farm = farm;
          rc.out_dir = trial.dir / name;
          rc.deploy_dir = trial.dir / name / "deploy";
          rc.vboard = vboard;
          rc.seed = trial.seed;
          rc.hooks.build = (src / "demo/bisect/build-hook.sh").string();
          rc.hooks.deploy = (src / "demo/bisect/deploy-hook.sh").string();
          rc.tree = {"linux", git, trial.dir / name / "trees/linux"};
          dmahil::bisect::BoardRevisionRunner runner(std::move(rc));
          BisectOptions o;
          o.rule = rule;
          const BisectResult r = dmahil::bisect::Bisect(revs, runner, o);
          const std::lock_guard<std::mutex> lock(mu);
          (rule == Rule::kSequential ? seq : fixed).Add(r, r.first_bad == trial.culprit);
          std::cerr << fmt::format(
              "trial {:3} {:<10}: culprit {:3}, found {:3}, {:4} runs{}\n", t, name, trial.culprit,
              r.first_bad, r.total_runs,
              r.confidence_stated ? fmt::format(", stated {:.4f}", r.confidence) : "");
        }
        std::filesystem::remove_all(trial.dir);  // keep only failures' logs
      } catch (const std::exception& e) {
        std::cerr << fmt::format("trial {}: {}\n", t, e.what());
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (uint32_t i = 0; i < std::max(parallel, 1u); ++i) pool.emplace_back(worker);
  for (std::thread& th : pool) th.join();
  if (failed) throw dmahil::bisect::BisectError("a trial could not run (see above)");
  return PrintSection(
      fmt::format("virtual farm: {} trials, {}-commit synthetic histories, cache-flush-local-addr "
                  "at boot_rate {} on zcu102 / foreign-to-device",
                  trials, commits, q),
      seq, fixed, true);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dmahil-bisect-bench: sequential bisection vs fixed 3 runs per step"};
  uint32_t trials = 100;
  uint32_t commits = 300;
  double rate = 0.3;
  uint64_t seed = std::random_device{}();
  uint32_t parallel = 2;
  uint32_t model_trials = 10000;
  bool model_only = false;
  std::filesystem::path out = "out/bisect-bench";
  std::filesystem::path vboard;
  app.add_option("--trials", trials, "virtual-farm trials")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--commits", commits, "commits after good in each history")
      ->capture_default_str()
      ->check(CLI::Range(2u, 100000u));
  app.add_option("--boot-rate", rate, "per-run detection rate of the fault, in (0, 1]")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1.0));
  app.add_option("--seed", seed, "seed of the culprits and runs (default random; printed)");
  app.add_option("--parallel", parallel, "trials at once")
      ->capture_default_str()
      ->check(CLI::Range(1u, 64u));
  app.add_option("--model-trials", model_trials, "simulated trials per culprit placement")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000000u));
  app.add_flag("--model-only", model_only, "skip the virtual farm section");
  app.add_option("--out", out, "scratch folder (a failing trial's logs stay)")
      ->capture_default_str();
  app.add_option("--vboard", vboard, "dmahil-vboard (default: beside this program)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  if (vboard.empty())
    vboard = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "dmahil-vboard";
  std::cout << fmt::format(
      "dmahil-bisect-bench: seed {} (confidence 0.99, 5 detections measured "
      "at the bad end; fixed rule: 3 runs, bad at the first detection)\n",
      seed);
  try {
    // Uniform, then the placements where a per-position error would show: every tested
    // revision bad (culprit 1), the middle, every tested revision good (the bad end).
    bool ok = true;
    for (const size_t culprit : {size_t{0}, size_t{1}, size_t{commits / 2 + 1}, size_t{commits}})
      ok = ModelSection(model_trials, commits, rate, seed, culprit) && ok;
    if (!model_only) ok = FarmSection(trials, commits, rate, seed, parallel, out, vboard) && ok;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "dmahil-bisect-bench: " << e.what() << "\n";
    return 2;
  }
}
