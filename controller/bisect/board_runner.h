// The live RevisionRunner: checks a revision out, runs the user's build and deploy hooks,
// and runs the fixtures on one board of a farm (controller/run/campaign.h), once per run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "common/validate.h"
#include "controller/bisect/bisection.h"
#include "controller/bisect/git_tree.h"

namespace dmahil::bisect {

/// A tree whose revision a hook builds and deploys: "linux" or "xen".
struct TreeCheckout {
  std::string name;                // "linux" or "xen"; the hooks see it as DMAHIL_TREE
  std::optional<GitTree> git;      // none: `worktree` is used as it is (git bisect run)
  std::filesystem::path worktree;  // where revisions are checked out; the hooks' cwd
};

/// The user's hooks, run with /bin/sh -c in the tree's worktree with this environment:
///   DMAHIL_TREE (linux|xen), DMAHIL_REV (full commit id), DMAHIL_WORKTREE,
///   DMAHIL_BOARD (farm board name), DMAHIL_DEPLOY_DIR (for a board that runs the model,
///   i.e. a virtual one: the revision folder it reads at power-on, where the deploy hook
///   writes <tree>.textproto; empty for a qemu-xen or hardware board, whose deploy hook
///   installs the build its own way, e.g. where its wiring's kernel paths point),
///   DMAHIL_STEP_DIR (this revision's log folder).
/// build: exit 0 built, 125 cannot be tested (skip, as `git bisect run`), else an error.
/// deploy: exit 0 deployed, else an error. Empty: nothing to run.
struct Hooks {
  std::string build;
  std::string deploy;
};

struct BoardRunnerConfig {
  LoadedFarm farm;                   // exactly one board; its fixtures are the ones run
  std::filesystem::path out_dir;     // steps/<rev>/ (hook logs, consoles) go here
  std::filesystem::path deploy_dir;  // the board's revision folder, made and used only for
                                     // a board that runs the model (a virtual one)
  std::filesystem::path vboard;      // the dmahil-vboard executable
  uint64_t seed = 1;                 // base seed: run i of rev r uses RunSeed(seed, r, i);
                                     // its retry a (after an ERROR) RunSeed(seed + a, r, i)
  uint32_t boot_timeout_ms = 15000;  // a virtual board's power-on to agents answering, ms; a
                                     // wired board (qemu-xen, hardware) takes its wiring's
                                     // boot_timeout_ms (BoardRevisionRunner::BootTimeoutMs)
  uint32_t error_retries = 2;        // a run that ends in ERROR is tried again this often
  Hooks hooks;
  TreeCheckout tree;                // the tree being bisected
  std::optional<TreeCheckout> pin;  // the other tree, held at pin_rev
  std::string pin_rev;
};

/// The run seed of run `run_index` of `rev`: a stable hash, so a resumed or repeated
/// bisection sees the same runs.
uint64_t RunSeed(uint64_t seed, const std::string& rev, uint32_t run_index);

class BoardRevisionRunner : public RevisionRunner {
 public:
  /// Throws BisectError unless the farm has exactly one board, or if its kind is not
  /// registered.
  explicit BoardRevisionRunner(BoardRunnerConfig config);

  /// Deploys the pinned tree first (once per process), then checks `rev` out and runs the
  /// build hook (125: kSkip) and the deploy hook, timing each (wall clock, ms; the pinned
  /// tree's hooks count in the first revision's times). Throws BisectError naming the
  /// hook, its exit status and its log when one fails.
  Preparation Prepare(const std::string& rev) override;

  /// One power cycle running every fixture; its failures are the FAILed fixtures with
  /// their diagnoses. A run that ends in ERROR with no FAIL (board did not come up, agent
  /// lost) is retried with another seed, error_retries times, then throws BisectError;
  /// board_ms adds up every attempt.
  RunOutcome Run(const std::string& rev, uint32_t run_index) override;

  /// The folder of `rev`'s logs: <out>/steps/<first 12 hex digits>.
  std::filesystem::path StepDir(const std::string& rev) const;

  /// How long a run waits for the board to come up, ms: what the board's kind says
  /// (controller/run/board_kind.h BootTimeoutMs), i.e. config.boot_timeout_ms for a
  /// virtual board and the wiring's boot_timeout_ms (0: 120000) for a wired one.
  uint32_t BootTimeoutMs() const { return boot_timeout_ms_; }

  /// Whether the board reads a revision folder (its kind runs the model): only then are
  /// deploy_dir made and DMAHIL_DEPLOY_DIR set.
  bool UsesDeployDir() const { return uses_deploy_dir_; }

 private:
  /// Checks out and runs build + deploy for one tree, timing both hooks.
  Preparation BuildAndDeploy(const TreeCheckout& tree, const std::string& rev);

  BoardRunnerConfig config_;
  bool uses_deploy_dir_ = false;
  uint32_t boot_timeout_ms_ = 0;
  bool pin_deployed_ = false;
};

}  // namespace dmahil::bisect
