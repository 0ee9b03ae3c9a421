#include "controller/bisect/bisection.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace dmahil::bisect {
namespace {

std::string Join(const std::vector<std::string>& parts) {
  return fmt::format("{}", fmt::join(parts, "; "));
}

/// What one run of `step.rev` said.
enum class Seen { kClean, kBug, kOther };

/// Runs `step.rev` once and adds the outcome to `step`. kBug: a failure in `known` (or
/// any failure if `known` is empty); kOther: only failures never seen at the bad end.
Seen RunOnce(RevisionRunner& runner, StepRecord& step, const std::set<std::string>& known) {
  const RunOutcome out = runner.Run(step.rev, step.runs);
  ++step.runs;
  step.board_ms += out.board_ms;
  if (!out.detected()) return Seen::kClean;
  bool bug = known.empty();
  for (const std::string& f : out.failures) bug |= known.count(f) != 0;
  if (!bug) {
    step.note = "failed otherwise than the bad end: " + Join(out.failures);
    return Seen::kOther;
  }
  ++step.detections;
  if (step.diagnosis.empty()) step.diagnosis = Join(out.failures);
  return Seen::kBug;
}

/// The untested revision nearest the middle of (lo, hi), or hi if all of them are skipped.
size_t PickNext(size_t lo, size_t hi, const std::vector<bool>& skipped) {
  const size_t mid = lo + (hi - lo) / 2;
  for (size_t d = 0; d < hi - lo; ++d) {
    if (mid + d < hi && !skipped[mid + d]) return mid + d;
    if (d > 0 && mid > lo + d && !skipped[mid - d]) return mid - d;
  }
  return hi;
}

/// The measurement at the bad end: runs until rate_detections detections or max_runs;
/// every failure seen there goes into `known`.
StepRecord MeasureRate(RevisionRunner& runner, const std::string& bad, size_t index,
                       const BisectOptions& options, std::set<std::string>& known) {
  const Preparation prepared = runner.Prepare(bad);
  if (prepared.skip())
    throw BisectError(fmt::format("the bad end {} cannot be built (build hook exit 125)", bad));
  StepRecord step;
  step.build_ms = prepared.build_ms;
  step.deploy_ms = prepared.deploy_ms;
  step.kind = StepKind::kMeasure;
  step.index = index;
  step.rev = bad;
  step.verdict = Verdict::kBad;
  while (step.detections < options.rate_detections && step.runs < options.max_runs) {
    const RunOutcome out = runner.Run(bad, step.runs);
    ++step.runs;
    step.board_ms += out.board_ms;
    if (!out.detected()) continue;
    ++step.detections;
    known.insert(out.failures.begin(), out.failures.end());
    if (step.diagnosis.empty()) step.diagnosis = Join(out.failures);
  }
  if (step.detections == 0)
    throw BisectError(fmt::format(
        "the bad end {} showed no detection in {} runs: it is not bad with these fixtures on "
        "this board, or its rate is below 1/{}",
        bad, step.runs, step.runs));
  return step;
}

}  // namespace

void ValidateOptions(const BisectOptions& o) {
  if (o.rule == Rule::kSequential && !(o.confidence > 0.0 && o.confidence < 1.0))
    throw BisectError(fmt::format("confidence {} is not in (0, 1)", o.confidence));
  if (o.rule == Rule::kFixedRuns && o.fixed_runs == 0)
    throw BisectError("fixed runs per step must be at least 1");
  if (o.max_runs == 0 || o.rate_detections == 0)
    throw BisectError("max runs and rate detections must be at least 1");
}

StepRecord TestRevision(RevisionRunner& runner, const std::string& rev, size_t index,
                        const DetectionRate& rate, double alpha, uint32_t max_runs,
                        const std::set<std::string>& known) {
  StepRecord step;
  step.index = index;
  step.rev = rev;
  step.alpha = alpha;
  step.planned = CleanRunsNeeded(rate, alpha, max_runs);
  step.miss = MissProbability(rate, step.planned);
  step.capped = step.miss > alpha;
  while (step.runs < step.planned) {
    const Seen seen = RunOnce(runner, step, known);
    if (seen == Seen::kClean) continue;
    step.verdict = seen == Seen::kBug ? Verdict::kBad : Verdict::kSkip;
    step.capped = false;
    return step;
  }
  step.verdict = Verdict::kGood;
  return step;
}

BisectResult Bisect(const std::vector<std::string>& revs, RevisionRunner& runner,
                    const BisectOptions& options, const StepObserver& on_step) {
  if (revs.size() < 2) throw BisectError("bisect needs a good and a bad revision");
  ValidateOptions(options);
  BisectResult result;
  result.rule = options.rule;
  result.confidence_stated = options.rule == Rule::kSequential;
  double spent = 0;  // sum of the tested steps' miss probabilities
  const auto finish_step = [&](StepRecord step) {
    result.total_runs += step.runs;
    result.board_ms += step.board_ms;
    result.build_ms += step.build_ms;
    result.deploy_ms += step.deploy_ms;
    if (on_step) on_step(step);
    result.steps.push_back(std::move(step));
  };

  size_t lo = 0;
  size_t hi = revs.size() - 1;
  std::set<std::string> known;  // the bad end's failures: what "the bug" looks like
  if (options.rule == Rule::kSequential) {
    StepRecord measure = MeasureRate(runner, revs[hi], hi, options, known);
    result.rate = {measure.detections, measure.runs};
    finish_step(std::move(measure));
  }
  std::vector<bool> skipped(revs.size(), false);
  while (hi - lo > 1) {
    const size_t m = PickNext(lo, hi, skipped);
    if (m == hi) break;  // everything between lo and hi is untestable
    StepRecord step;
    const Preparation prepared = runner.Prepare(revs[m]);
    if (prepared.skip()) {
      step.index = m;
      step.rev = revs[m];
      step.verdict = Verdict::kSkip;
      step.note = "build hook exit 125";
    } else if (options.rule == Rule::kSequential) {
      // The budget left, shared among the steps still to come; a capped step may have
      // overspent it, and then the rest run to max_runs (and the answer says so).
      const double left = std::max(1.0 - options.confidence - spent, 0.0);
      step = TestRevision(runner, revs[m], m, result.rate, left / StepsLeft(hi - lo),
                          options.max_runs, known);
      if (step.verdict != Verdict::kSkip) spent += step.miss;
    } else {
      step.index = m;
      step.rev = revs[m];
      step.planned = options.fixed_runs;
      Seen seen = Seen::kClean;
      while (seen == Seen::kClean && step.runs < options.fixed_runs)
        seen = RunOnce(runner, step, known);
      step.verdict = seen == Seen::kClean ? Verdict::kGood : Verdict::kBad;
    }
    step.build_ms = prepared.build_ms;
    step.deploy_ms = prepared.deploy_ms;
    if (step.verdict == Verdict::kSkip) skipped[m] = true;
    if (step.verdict == Verdict::kGood) lo = m;
    if (step.verdict == Verdict::kBad) {
      hi = m;
      if (options.rule == Rule::kSequential) {
        // A revision found bad has the same bug: its runs sharpen q for the steps to come.
        result.rate.detections += step.detections;
        result.rate.runs += step.runs;
      }
    }
    finish_step(std::move(step));
  }
  result.confidence = result.confidence_stated ? std::max(1.0 - spent, 0.0) : 0.0;
  result.first_bad = hi;
  for (size_t i = lo + 1; i < hi; ++i)
    if (skipped[i]) result.also_possible.push_back(i);
  return result;
}

}  // namespace dmahil::bisect
