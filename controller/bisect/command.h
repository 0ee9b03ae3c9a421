// `dmahil bisect` and `dmahil bisect-step`: the command lines over the bisection engine.
//
//   dmahil bisect --farm demo/bisect/farm.textproto --board zcu102
//       --tree linux=/src/linux --good v6.0 --bad v6.1
//       [--pin xen=/src/xen --pin-rev RELEASE-4.17.0]
//       --build-hook 'make -j8 Image' --deploy-hook './deploy.sh' --out out/bisect
//   git bisect run dmahil bisect-step --farm F --board B --tree linux --rate 5/17 ...
//
// Exit status of `dmahil bisect`: 0 the first bad commit was found with at least the
// requested confidence (any answer, for --rule fixed); 1 an answer below it (a step ran out
// of --max-runs) or one hidden among skipped commits; 2 configuration or infrastructure
// error (run the same command again to resume from <out>/journal.jsonl).
// `dmahil bisect-step` follows `git bisect run`: 0 good, 1 bad, 125 skip (build hook said
// so), 255 cannot tell (a bad command line, an error, or --max-runs ran out: aborts the
// git bisection; never 2, which git would read as "bad"); with --measure-rate: 0 measured.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "controller/bisect/board_runner.h"

namespace CLI {
class App;
}

namespace dmahil::bisect {

/// The options both commands share: the board, the fixtures, hooks and run settings.
struct BoardOptions {
  std::filesystem::path farm;         // farm file: the board and the fixtures
  std::string board;                  // farm board name
  std::vector<std::string> fixtures;  // fixture names to run (default: all the farm's)
  Hooks hooks;
  std::optional<uint64_t> seed;  // default: the journal's, else random (printed)
  std::filesystem::path out;     // journal, reports, steps/<rev>/
  std::filesystem::path vboard;  // default: beside dmahil
  uint32_t max_runs = 200;
};

struct BisectCommandLine {
  BoardOptions board;
  std::string tree;  // "linux=/path/to/tree" or "xen=/path"
  std::string good;
  std::string bad;
  std::string pin;      // "xen=/path" (or linux=...), empty: nothing pinned
  std::string pin_rev;  // the pinned tree's revision
  double confidence = 0.99;
  std::string rule = "sequential";  // or "fixed"
  uint32_t fixed_runs = 3;
  uint32_t rate_detections = 5;
};

struct StepCommandLine {
  BoardOptions board;
  std::string tree = "linux";  // the tree in the current directory (checked out by git)
  std::string rate;            // "D/N": D detections in N runs at the bad end
  double confidence = 0.99;    // of this one verdict: M(n) <= 1 - confidence
  uint32_t measure_rate = 0;   // > 0: only measure the rate here, to this many detections
};

/// The farm file of `o` reduced to its board `o.board` and the fixtures `o.fixtures` (all
/// when empty). Throws ConfigError for a bad farm file, BisectError naming the board or
/// fixture that is not in it.
LoadedFarm LoadBoardFarm(const BoardOptions& o);

/// Registers the two subcommands' options on `app`; returns {bisect, bisect-step}.
std::pair<CLI::App*, CLI::App*> AddBisectCommands(CLI::App& app, BisectCommandLine& bisect,
                                                  StepCommandLine& step);

/// Runs `dmahil bisect`; the report goes to `out`, progress and errors to `err`.
int BisectCommand(BisectCommandLine cl, std::ostream& out, std::ostream& err);

/// Runs `dmahil bisect-step` in the current directory.
int BisectStepCommand(StepCommandLine cl, std::ostream& out, std::ostream& err);

}  // namespace dmahil::bisect
