#include "controller/bisect/command.h"

#include <charconv>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <google/protobuf/text_format.h>

#include "common/config.h"
#include "controller/bisect/journal.h"
#include "controller/bisect/report.h"
#include "controller/run/board_kind.h"
#include "controller/run/campaign.h"
#include "sim/faults.h"

namespace dmahil::bisect {
namespace {

constexpr int kStepCannotTell = 255;  // > 127: `git bisect run` aborts

void AddBoardOptions(CLI::App* cmd, BoardOptions& o) {
  cmd->add_option("--farm", o.farm, "farm file: the board and the fixtures")->required();
  cmd->add_option("--board", o.board, "the farm board to run on")->required();
  cmd->add_option("--fixture", o.fixtures, "fixture name to run (repeat; default: the farm's)");
  cmd->add_option("--build-hook", o.hooks.build,
                  "shell command building the checked-out revision (exit 125: skip it)");
  cmd->add_option("--deploy-hook", o.hooks.deploy,
                  "shell command installing it on the board (DMAHIL_DEPLOY_DIR for virtual ones)");
  cmd->add_option("--seed", o.seed, "base seed of the runs (default: the journal's, else random)");
  cmd->add_option("--max-runs", o.max_runs, "runs at most per step")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  cmd->add_option("--vboard", o.vboard, "dmahil-vboard executable (default: beside dmahil)");
}

/// "name=rest" with name linux or xen.
std::pair<std::string, std::string> SplitTree(const std::string& spec, const char* option) {
  const size_t eq = spec.find('=');
  const std::string name = spec.substr(0, eq);
  if (eq == std::string::npos || (name != "linux" && name != "xen") || eq + 1 == spec.size())
    throw BisectError(fmt::format("{} \"{}\": expected linux=<path> or xen=<path>", option, spec));
  return {name, spec.substr(eq + 1)};
}

std::vector<std::string> FixtureNames(const LoadedFarm& farm) {
  std::vector<std::string> names;
  for (const LoadedFixture& f : farm.fixtures) names.push_back(f.fixture.name());
  return names;
}

uint64_t RandomSeed() { return std::random_device{}() | (uint64_t{std::random_device{}()} << 32); }

/// --seed, else the seed in an existing journal's header, else a random one.
uint64_t ChooseSeed(const BoardOptions& o, const std::filesystem::path& journal) {
  if (o.seed) return *o.seed;
  std::ifstream in(journal);
  std::string first;
  if (std::getline(in, first)) {
    try {
      return nlohmann::json::parse(first).at("seed").get<uint64_t>();
    } catch (const nlohmann::json::exception&) {
      // not ours: Journal reports it with the header check
    }
  }
  return RandomSeed();
}

BoardRunnerConfig RunnerConfig(const BoardOptions& o, LoadedFarm farm, uint64_t seed) {
  BoardRunnerConfig rc;
  rc.farm = std::move(farm);
  rc.out_dir = o.out;
  rc.deploy_dir = o.out / "deploy";
  rc.vboard = o.vboard;
  rc.seed = seed;
  rc.hooks = o.hooks;
  return rc;
}

/// A stable hash (FNV-1a, see controller::BoardSeed) of a message's text form: the
/// journal refuses to resume a bisection whose board or fixtures changed.
uint64_t ContentHash(const google::protobuf::Message& m) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(m, &text);
  return controller::BoardSeed(0, text);
}

int RunBisect(const BisectCommandLine& cl, std::ostream& out, std::ostream& err) {
  // Everything is checked before anything is written: a typo leaves no journal behind.
  const auto [tree_name, tree_path] = SplitTree(cl.tree, "--tree");
  BisectOptions options;
  options.rule = cl.rule == "fixed" ? Rule::kFixedRuns : Rule::kSequential;
  options.confidence = cl.confidence;
  options.fixed_runs = cl.fixed_runs;
  options.rate_detections = cl.rate_detections;
  options.max_runs = cl.board.max_runs;
  ValidateOptions(options);
  LoadedFarm farm = LoadBoardFarm(cl.board);
  GitTree git(tree_path);
  const std::vector<std::string> revs = git.FirstParentPath(cl.good, cl.bad);
  std::optional<TreeCheckout> pin;
  std::string pin_rev;
  nlohmann::json pin_id = nullptr;
  if (!cl.pin.empty()) {
    const auto [pin_name, pin_path] = SplitTree(cl.pin, "--pin");
    if (pin_name == tree_name)
      throw BisectError(fmt::format("--pin {}: that is the tree being bisected", pin_name));
    GitTree pin_git(pin_path);
    pin_rev = pin_git.Resolve(cl.pin_rev);
    pin = TreeCheckout{pin_name, pin_git, cl.board.out / "trees" / pin_name};
    pin_id = {{"tree", pin_name},
              {"repo", std::filesystem::absolute(pin_path).lexically_normal().string()},
              {"rev", pin_rev}};
  }

  BisectContext ctx;
  ctx.tree = tree_name;
  ctx.repo = std::filesystem::absolute(git.repo()).lexically_normal().string();
  if (pin)
    ctx.pinned = fmt::format("{} {} at {}", pin->name, pin_id["repo"].get<std::string>(), pin_rev);
  ctx.board = cl.board.board;
  ctx.fixtures = FixtureNames(farm);
  ctx.revs = revs;
  ctx.requested_confidence = cl.confidence;
  ctx.out_dir = cl.board.out.string();

  std::filesystem::create_directories(cl.board.out);
  const std::filesystem::path journal_path = cl.board.out / "journal.jsonl";
  ctx.seed = ChooseSeed(cl.board, journal_path);
  // The header names what decides the runs' outcomes, so that replaying them is sound;
  // how they are decided (rule, confidence, max runs) may change between invocations.
  nlohmann::json fixture_hashes = nlohmann::json::array();
  for (const LoadedFixture& f : farm.fixtures) fixture_hashes.push_back(ContentHash(f.fixture));
  const nlohmann::json header = {{"type", "header"},
                                 {"version", 2},
                                 {"tree", tree_name},
                                 {"repo", ctx.repo},
                                 {"good", revs.front()},
                                 {"bad", revs.back()},
                                 {"pinned", pin_id},
                                 {"board", ctx.board},
                                 {"board_hash", ContentHash(farm.boards[0].board)},
                                 {"fixtures", ctx.fixtures},
                                 {"fixture_hashes", fixture_hashes},
                                 {"seed", ctx.seed}};
  Journal journal(journal_path, header);
  journal.Append({{"type", "start"},
                  {"rule", cl.rule},
                  {"confidence", cl.confidence},
                  {"fixed_runs", cl.fixed_runs},
                  {"rate_detections", cl.rate_detections},
                  {"max_runs", cl.board.max_runs},
                  {"build_hook", cl.board.hooks.build},
                  {"deploy_hook", cl.board.hooks.deploy}});
  err << fmt::format("dmahil bisect: {} commits between {} and {}, board {}, seed {}{}\n",
                     revs.size() - 1, revs.front().substr(0, 12), revs.back().substr(0, 12),
                     ctx.board, ctx.seed,
                     journal.loaded_runs() > 0
                         ? fmt::format("; resuming: {} runs in the journal", journal.loaded_runs())
                         : "");

  BoardRunnerConfig rc = RunnerConfig(cl.board, std::move(farm), ctx.seed);
  rc.tree = {tree_name, git, cl.board.out / "trees" / tree_name};
  rc.pin = pin;
  rc.pin_rev = pin_rev;
  BoardRevisionRunner live(std::move(rc));
  ReplayRunner runner(journal, live);
  const BisectResult result = Bisect(revs, runner, options, [&](const StepRecord& st) {
    journal.AppendStep(st);
    err << fmt::format("  {} {:>5} {}: {} after {} runs ({} detected){}\n",
                       st.kind == StepKind::kMeasure ? "measure" : "step   ", st.index,
                       st.rev.substr(0, 12), VerdictName(st.verdict), st.runs, st.detections,
                       st.note.empty() ? "" : ": " + st.note);
  });

  // Subjects of the revisions the report names only: one git call each, not per commit.
  for (const StepRecord& st : result.steps) ctx.subjects[st.index] = git.Subject(revs[st.index]);
  ctx.subjects[result.first_bad] = git.Subject(revs[result.first_bad]);
  for (size_t i : result.also_possible) ctx.subjects[i] = git.Subject(revs[i]);
  const std::string text = RenderReport(ctx, result);
  nlohmann::json json = ReportJson(ctx, result);
  json["runs_replayed"] = runner.replayed_runs();
  json["runs_live"] = runner.live_runs();
  nlohmann::json record = {{"type", "result"}, {"first_bad", revs[result.first_bad]}};
  if (result.confidence_stated) record["confidence"] = result.confidence;
  journal.Append(record);
  std::ofstream(cl.board.out / "bisect.txt") << text;
  std::ofstream(cl.board.out / "bisect.json")
      << json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  out << text;
  out << fmt::format("this invocation: {} runs on the board, {} replayed from the journal\n",
                     runner.live_runs(), runner.replayed_runs());
  const bool sure = !result.confidence_stated || result.confidence >= cl.confidence;
  return sure && result.also_possible.empty() ? 0 : 1;
}

/// "D/N" with 0 < D <= N < 2^32, every character used.
DetectionRate ParseRate(const std::string& rate) {
  const char* const end = rate.data() + rate.size();
  uint32_t d = 0;
  uint32_t n = 0;
  const auto first = std::from_chars(rate.data(), end, d);
  if (first.ec == std::errc() && first.ptr != end && *first.ptr == '/') {
    const auto second = std::from_chars(first.ptr + 1, end, n);
    if (second.ec == std::errc() && second.ptr == end && d > 0 && d <= n) return {d, n};
  }
  throw BisectError(fmt::format(
      "--rate \"{}\": expected D/N, D detections in N runs at the bad end, 0 < D <= N", rate));
}

int RunStep(const StepCommandLine& cl, std::ostream& out, std::ostream& err) {
  if (cl.measure_rate == 0 && cl.rate.empty())
    throw BisectError("give --rate D/N (measure it with --measure-rate at the bad revision)");
  if (!(cl.confidence > 0 && cl.confidence < 1))
    throw BisectError(fmt::format("--confidence {} is not in (0, 1)", cl.confidence));
  const DetectionRate rate = cl.measure_rate > 0 ? DetectionRate{} : ParseRate(cl.rate);
  const GitTree git(std::filesystem::current_path());
  const std::string rev = git.Resolve("HEAD");
  std::filesystem::create_directories(cl.board.out);
  const uint64_t seed = cl.board.seed ? *cl.board.seed : RandomSeed();
  BoardRunnerConfig rc = RunnerConfig(cl.board, LoadBoardFarm(cl.board), seed);
  rc.tree = {cl.tree, std::nullopt, std::filesystem::current_path()};
  BoardRevisionRunner runner(std::move(rc));
  if (runner.Prepare(rev).skip()) {
    out << fmt::format("{}: skip (build hook exit 125)\n", rev);
    return 125;
  }
  if (cl.measure_rate > 0) {
    uint32_t runs = 0;
    uint32_t detections = 0;
    while (detections < cl.measure_rate && runs < cl.board.max_runs)
      detections += runner.Run(rev, runs++).detected() ? 1 : 0;
    out << fmt::format("{}: {} detections in {} runs: --rate {}/{} (seed {})\n", rev, detections,
                       runs, detections, runs, seed);
    return detections > 0 ? 0 : kStepCannotTell;
  }
  const StepRecord st = TestRevision(runner, rev, 0, rate, 1.0 - cl.confidence, cl.board.max_runs);
  out << fmt::format("{}: {} after {} runs, {} detected{}; P(miss) {:.2e}; seed {}\n", rev,
                     st.capped ? "cannot tell" : VerdictName(st.verdict), st.runs, st.detections,
                     st.diagnosis.empty() ? "" : " (" + st.diagnosis + ")", st.miss, seed);
  if (st.capped) {
    err << fmt::format("--max-runs {} ran out before P(miss) <= {}\n", cl.board.max_runs,
                       1.0 - cl.confidence);
    return kStepCannotTell;
  }
  return st.verdict == Verdict::kBad ? 1 : 0;
}

}  // namespace

LoadedFarm LoadBoardFarm(const BoardOptions& o) {
  LoadedFarm farm = controller::LoadFarmWithKinds(
      o.farm, [](std::string_view id) { return sim::FindFault(id) != nullptr; });
  std::vector<LoadedBoard> boards;
  std::vector<std::string> names;
  for (LoadedBoard& b : farm.boards) {
    names.push_back(b.entry.name());
    if (b.entry.name() == o.board) boards.push_back(std::move(b));
  }
  if (boards.empty())
    throw BisectError(fmt::format("{}: no board \"{}\" (it has: {})", o.farm.string(), o.board,
                                  fmt::join(names, ", ")));
  farm.boards = std::move(boards);
  if (!o.fixtures.empty()) {
    std::vector<LoadedFixture> chosen;
    for (const std::string& want : o.fixtures) {
      bool found = false;
      for (const LoadedFixture& f : farm.fixtures)
        if (f.fixture.name() == want) {
          chosen.push_back(f);
          found = true;
        }
      if (!found) throw BisectError(fmt::format("{}: no fixture \"{}\"", o.farm.string(), want));
    }
    farm.fixtures = std::move(chosen);
  }
  return farm;
}

std::pair<CLI::App*, CLI::App*> AddBisectCommands(CLI::App& app, BisectCommandLine& bisect,
                                                  StepCommandLine& step) {
  CLI::App* b = app.add_subcommand(
      "bisect",
      "find the first bad Linux or Xen commit of a probabilistic DMA bug, with a "
      "stated confidence");
  AddBoardOptions(b, bisect.board);
  b->add_option("--tree", bisect.tree, "the tree to bisect: linux=<path> or xen=<path>")
      ->required();
  b->add_option("--good", bisect.good, "a revision without the bug")->required();
  b->add_option("--bad", bisect.bad, "a revision with it")->required();
  CLI::Option* pin =
      b->add_option("--pin", bisect.pin, "the other tree, held at --pin-rev: xen=<path>");
  b->add_option("--pin-rev", bisect.pin_rev, "the pinned tree's revision")->needs(pin);
  pin->needs("--pin-rev");
  b->add_option("--confidence", bisect.confidence, "of the answer, in (0, 1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  b->add_option("--rule", bisect.rule, "sequential, or fixed (the fixed-runs baseline)")
      ->capture_default_str()
      ->check(CLI::IsMember({"sequential", "fixed"}));
  b->add_option("--fixed-runs", bisect.fixed_runs, "runs per step with --rule fixed")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  b->add_option("--rate-detections", bisect.rate_detections,
                "detections to see at the bad end before bisecting")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000u));
  b->add_option("--out", bisect.board.out, "journal, reports, logs; resume by rerunning")
      ->required();

  CLI::App* s =
      app.add_subcommand("bisect-step",
                         "test the revision checked out here: exit 0 good, 1 bad, 125 skip (for "
                         "`git bisect run`)");
  AddBoardOptions(s, step.board);
  s->add_option("--tree", step.tree, "which tree the current directory is: linux or xen")
      ->capture_default_str()
      ->check(CLI::IsMember({"linux", "xen"}));
  s->add_option("--rate", step.rate, "D/N: D detections in N runs at the bad end");
  s->add_option("--confidence", step.confidence,
                "of this step's verdict: P(a bad revision passes) <= 1 - confidence")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  s->add_option("--measure-rate", step.measure_rate,
                "run here (a bad revision) until this many detections and print --rate");
  s->add_option("--out", step.board.out, "folder for logs and consoles")->required();
  return {b, s};
}

int BisectCommand(BisectCommandLine cl, std::ostream& out, std::ostream& err) {
  try {
    return RunBisect(cl, out, err);
  } catch (const ConfigError& e) {
    err << e.what() << "\n";
  } catch (const std::exception& e) {
    err << "dmahil bisect: " << e.what() << "\n";
    std::error_code ec;
    if (std::filesystem::exists(cl.board.out / "journal.jsonl", ec))
      err << "(finished runs are in " << (cl.board.out / "journal.jsonl").string()
          << "; run the same command again to resume)\n";
  }
  return 2;
}

int BisectStepCommand(StepCommandLine cl, std::ostream& out, std::ostream& err) {
  try {
    return RunStep(cl, out, err);
  } catch (const ConfigError& e) {
    err << e.what() << "\n";
  } catch (const std::exception& e) {
    err << "dmahil bisect-step: " << e.what() << "\n";
  }
  return kStepCannotTell;
}

}  // namespace dmahil::bisect
