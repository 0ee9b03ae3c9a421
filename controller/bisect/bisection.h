// The bisection itself: the first bad revision of a linear history, when a bad
// revision shows the bug only in some runs. The decision maths is in sequential.h.
//
// Two rules decide a step:
//  - kSequential (ours): measure the detection rate at the known-bad end first (and pool
//    in the runs of every revision found bad as the bisection goes), then run each step
//    until a detection (bad) or until a bad revision would have stayed clean that long
//    with probability M(n) <= alpha (good; sequential.h). The error budget
//    1 - confidence is shared out as the steps come: a step gets budget_left / steps_left
//    and spends its M(n) whatever its verdict, so the stated confidence
//    1 - sum of M(n) over the tested steps is >= the requested one and holds for every
//    position of the culprit, not only on average.
//  - kFixedRuns (the baseline, OSSTest/KernelCI-style fixed repeats): a fixed number of
//    runs per step, bad at the first detection. It states no confidence.
// A failure that is not the bug (a fixture or diagnosis never seen at the bad end) makes
// a revision untestable (skipped) rather than bad: an older, different bug must not be
// blamed for this one.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "controller/bisect/sequential.h"

namespace dmahil::bisect {

/// A bisection that cannot go on: a hook failed, the board was lost, the bad end never
/// showed the bug. The journal keeps every finished run, so it can be resumed.
class BisectError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Rule { kSequential, kFixedRuns };

struct BisectOptions {
  Rule rule = Rule::kSequential;
  double confidence = 0.99;      // kSequential: of the whole answer, in (0, 1)
  uint32_t fixed_runs = 3;       // kFixedRuns: runs per step (fewer if one detects)
  uint32_t rate_detections = 5;  // kSequential: detections to collect at the bad end
  uint32_t max_runs = 200;       // per step, and for the measurement at the bad end
};

/// What Prepare made of a revision.
enum class Prepared { kReady, kSkip };

/// Prepare's answer: what it made of the revision and how long its hooks took.
struct Preparation {
  Prepared prepared = Prepared::kReady;
  uint64_t build_ms = 0;   // wall time of the build hook, ms (0: none ran)
  uint64_t deploy_ms = 0;  // wall time of the deploy hook, ms (0: none ran, or skipped)

  bool skip() const { return prepared == Prepared::kSkip; }
};

/// One run: one power cycle of the board running the fixtures.
struct RunOutcome {
  /// "<fixture>: <diagnosis>" of every fixture that failed, sorted; empty when clean.
  std::vector<std::string> failures;
  uint64_t board_ms = 0;  // wall time of the run, power-on to power-off, in ms

  bool detected() const { return !failures.empty(); }
};

/// The board side of a bisection: builds, deploys and runs revisions.
class RevisionRunner {
 public:
  virtual ~RevisionRunner() = default;
  /// Builds and deploys `rev` (a full commit id), timing both. kSkip: it cannot be tested
  /// (the build hook exited 125, as with `git bisect run`). Throws BisectError otherwise.
  virtual Preparation Prepare(const std::string& rev) = 0;
  /// One run of the prepared `rev`; run_index counts the runs of this rev from 0 (it seeds
  /// virtual boards). Throws BisectError when the board cannot give an answer.
  virtual RunOutcome Run(const std::string& rev, uint32_t run_index) = 0;
};

enum class StepKind { kMeasure, kTest };
enum class Verdict { kGood, kBad, kSkip };

/// One step: the rate measurement at the bad end, or the test of one revision.
struct StepRecord {
  StepKind kind = StepKind::kTest;
  size_t index = 0;  // into the revision list
  std::string rev;
  double alpha = 0;      // kSequential: the miss probability this step may accept
  uint32_t planned = 0;  // clean runs that make it good (fixed_runs for the baseline)
  double miss = 0;       // kSequential: M(planned), the chance a bad revision passes
  uint32_t runs = 0;
  uint32_t detections = 0;
  Verdict verdict = Verdict::kGood;
  bool capped = false;     // max_runs ran out before M(n) <= alpha
  uint64_t board_ms = 0;   // sum of the runs' board time
  uint64_t build_ms = 0;   // the revision's build hook (Preparation::build_ms)
  uint64_t deploy_ms = 0;  // its deploy hook (Preparation::deploy_ms)
  std::string diagnosis;   // the first detection's failures, "; "-joined
  std::string note;        // why a tested revision was skipped, e.g. another failure
};

struct BisectResult {
  Rule rule = Rule::kSequential;
  size_t first_bad = 0;               // index into the revision list
  std::vector<size_t> also_possible;  // untestable (skipped) revisions that may be the
                                      // first bad instead, when skips hid the boundary
  bool confidence_stated = false;     // kFixedRuns states none
  double confidence = 0;              // 1 - sum of the tested steps' miss, at least 0
  DetectionRate rate;                 // bad end + revisions found bad (kSequential)
  std::vector<StepRecord> steps;      // in the order run
  uint32_t total_runs = 0;
  uint64_t board_ms = 0;  // sums over the steps, ms
  uint64_t build_ms = 0;
  uint64_t deploy_ms = 0;
};

/// Called after each finished step, e.g. to log it or write it to the journal.
using StepObserver = std::function<void(const StepRecord&)>;

/// Throws BisectError naming the bad option: confidence not in (0, 1) for kSequential,
/// fixed_runs 0 for kFixedRuns, max_runs or rate_detections 0.
void ValidateOptions(const BisectOptions& options);

/// Tests one revision with the sequential rule: runs until a detection (bad) or until
/// MissProbability(rate, n) <= alpha (good), at most max_runs (then good and capped).
/// `known`: the failures that are the bug ("<fixture>: <diagnosis>", from the bad end);
/// a run failing only otherwise ends the step as kSkip with a note. Empty: any failure is
/// the bug. Used by Bisect and by `dmahil bisect-step`; Prepare must have been called.
StepRecord TestRevision(RevisionRunner& runner, const std::string& rev, size_t index,
                        const DetectionRate& rate, double alpha, uint32_t max_runs,
                        const std::set<std::string>& known = {});

/// Bisects revs (revs.front() known good, revs.back() known bad, each the first parent of
/// the next: `git rev-list --first-parent`), at least two of them. Returns the first bad
/// revision. Throws BisectError when a hook or the board fails, when the bad end shows
/// no detection in max_runs runs, or on bad options.
BisectResult Bisect(const std::vector<std::string>& revs, RevisionRunner& runner,
                    const BisectOptions& options, const StepObserver& on_step = {});

}  // namespace dmahil::bisect
